//! [`Message`]: what an in-process client publishes and receives, with the
//! MQTT 5.0 properties that travel with it.

use super::ClientError;
use crate::codec::{Properties, PropertiesBuf, Property, Publish, QoS, check_utf8};

/// Longest MQTT string and binary value.
const MAX_STRING: usize = 65_535;

/// An application message, as an in-process subscriber receives it and as
/// [`Client::publish_message`](super::Client::publish_message) sends it.
///
/// The in-process client speaks MQTT 5.0, so the properties a 5.0
/// publisher set arrive here as they were sent (a 3.1.1 publisher sets
/// none), and the ones set here reach 5.0 subscribers on the network.
///
/// ```
/// use boxmq::{Message, QoS};
/// let m = Message::new("dash/cmd", "reboot")
///     .with_qos(QoS::AtLeastOnce)
///     .with_user_property("origin", "display")
///     .with_response_topic("dash/reply");
/// assert_eq!(m.user_properties, [("origin".to_owned(), "display".to_owned())]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published to.
    pub topic: String,
    /// The payload, as published.
    pub payload: Vec<u8>,
    /// The QoS it was delivered with: the lower of the published QoS and
    /// the subscription's.
    pub qos: QoS,
    /// Set on retained messages delivered because of a new subscription;
    /// clear on messages published while subscribed [MQTT-3.3.1-9].
    pub retain: bool,
    /// User Properties (name, value), in the order published; the broker
    /// forwards them unchanged [MQTT-3.3.2-17] [MQTT-3.3.2-18].
    pub user_properties: Vec<(String, String)>,
    /// Content Type: a MIME type or any string the applications agree on.
    pub content_type: Option<String>,
    /// Response Topic: where the receiver should publish a reply (a topic
    /// name, no wildcards [MQTT-3.3.2-14]).
    pub response_topic: Option<String>,
    /// Correlation Data: ties a reply to its request.
    pub correlation_data: Option<Vec<u8>>,
    /// Payload Format Indicator: `Some(1)` says the payload is UTF-8,
    /// `Some(0)` or `None` unspecified bytes. Forwarded as published.
    pub payload_format_indicator: Option<u8>,
    /// Message Expiry Interval in seconds: when publishing, how long the
    /// broker may keep it for subscribers that are not connected; when
    /// received, what was left of it [MQTT-3.3.2-6].
    pub message_expiry_interval: Option<u32>,
}

impl Message {
    /// A QoS 0, not retained message with no properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.into(),
            ..Message::default()
        }
    }

    /// Sets the QoS.
    #[must_use]
    pub fn with_qos(mut self, qos: QoS) -> Message {
        self.qos = qos;
        self
    }

    /// Sets the retain flag.
    #[must_use]
    pub fn with_retain(mut self, retain: bool) -> Message {
        self.retain = retain;
        self
    }

    /// Appends a User Property (names may repeat).
    #[must_use]
    pub fn with_user_property(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Message {
        self.user_properties.push((name.into(), value.into()));
        self
    }

    /// Sets the Content Type.
    #[must_use]
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Message {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the Response Topic.
    #[must_use]
    pub fn with_response_topic(mut self, topic: impl Into<String>) -> Message {
        self.response_topic = Some(topic.into());
        self
    }

    /// Sets the Correlation Data.
    #[must_use]
    pub fn with_correlation_data(mut self, data: impl Into<Vec<u8>>) -> Message {
        self.correlation_data = Some(data.into());
        self
    }

    /// Sets the Payload Format Indicator (1: the payload is UTF-8).
    #[must_use]
    pub fn with_payload_format_indicator(mut self, indicator: u8) -> Message {
        self.payload_format_indicator = Some(indicator);
        self
    }

    /// Sets the Message Expiry Interval, in seconds.
    #[must_use]
    pub fn with_message_expiry_interval(mut self, seconds: u32) -> Message {
        self.message_expiry_interval = Some(seconds);
        self
    }

    /// The message as a subscriber gets it from a PUBLISH the core sent.
    pub(crate) fn from_publish(p: &Publish<'_>) -> Message {
        let mut m = Message {
            topic: p.topic.to_owned(),
            payload: p.payload.to_vec(),
            qos: p.qos,
            retain: p.retain,
            ..Message::default()
        };
        for prop in p.properties {
            match prop {
                Property::UserProperty(k, v) => {
                    m.user_properties.push((k.to_owned(), v.to_owned()));
                }
                Property::ContentType(s) => m.content_type = Some(s.to_owned()),
                Property::ResponseTopic(s) => m.response_topic = Some(s.to_owned()),
                Property::CorrelationData(d) => m.correlation_data = Some(d.to_vec()),
                Property::PayloadFormatIndicator(b) => m.payload_format_indicator = Some(b),
                Property::MessageExpiryInterval(s) => m.message_expiry_interval = Some(s),
                // Subscription identifiers and topic aliases: the local
                // connection asks for neither.
                _ => {}
            }
        }
        m
    }

    /// The PUBLISH properties for this message, after checking that the
    /// broker will take them: every string as the decoder wants it (UTF-8
    /// without U+0000 or control characters, at most 65,535 bytes).
    /// Whether the Response Topic is a valid topic name is the caller's
    /// check (it knows the limits).
    pub(crate) fn properties(&self) -> Result<PropertiesBuf, ClientError> {
        let mut buf = PropertiesBuf::new();
        if let Some(b) = self.payload_format_indicator {
            buf.push(&Property::PayloadFormatIndicator(b));
        }
        if let Some(s) = self.message_expiry_interval {
            buf.push(&Property::MessageExpiryInterval(s));
        }
        if let Some(s) = &self.content_type {
            check_string("Content Type", s)?;
            buf.push(&Property::ContentType(s));
        }
        if let Some(s) = &self.response_topic {
            check_string("Response Topic", s)?;
            buf.push(&Property::ResponseTopic(s));
        }
        if let Some(d) = &self.correlation_data {
            if d.len() > MAX_STRING {
                return Err(invalid("Correlation Data", "longer than 65,535 bytes"));
            }
            buf.push(&Property::CorrelationData(d));
        }
        for (k, v) in &self.user_properties {
            check_string("User Property name", k)?;
            check_string("User Property value", v)?;
            buf.push(&Property::UserProperty(k, v));
        }
        Ok(buf)
    }

    /// The PUBLISH this message is, with `properties` from
    /// [`Message::properties`].
    pub(crate) fn as_publish<'a>(
        &'a self,
        properties: Properties<'a>,
        packet_id: Option<crate::codec::PacketId>,
    ) -> Publish<'a> {
        Publish {
            dup: false,
            qos: self.qos,
            retain: self.retain,
            topic: &self.topic,
            packet_id,
            properties,
            payload: &self.payload,
        }
    }
}

fn invalid(property: &'static str, reason: &'static str) -> ClientError {
    ClientError::InvalidProperty { property, reason }
}

/// A property string the decoder on the other side accepts.
pub(crate) fn check_string(property: &'static str, s: &str) -> Result<(), ClientError> {
    if s.len() > MAX_STRING {
        return Err(invalid(property, "longer than 65,535 bytes"));
    }
    check_utf8(s.as_bytes())
        .map(|_| ())
        .map_err(|_| invalid(property, "holds U+0000 or a control character"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{ProtocolVersion, decode};

    #[test]
    fn properties_round_trip_through_a_publish() {
        let m = Message::new("a/b", "x")
            .with_qos(QoS::AtLeastOnce)
            .with_user_property("k", "v")
            .with_user_property("k", "w")
            .with_content_type("application/json")
            .with_response_topic("a/reply")
            .with_correlation_data(vec![1, 2, 3])
            .with_payload_format_indicator(1)
            .with_message_expiry_interval(60);
        let props = m.properties().expect("valid");
        let pid = crate::codec::PacketId::new(7);
        let mut out = Vec::new();
        m.as_publish(props.as_properties(), pid)
            .encode(ProtocolVersion::V5, &mut out);
        let (packet, _) = decode(&out, ProtocolVersion::V5, usize::MAX)
            .expect("decodes")
            .expect("complete");
        let crate::codec::Packet::Publish(p) = packet else {
            panic!("not a PUBLISH: {packet:?}");
        };
        assert_eq!(Message::from_publish(&p), m);
    }

    #[test]
    fn strings_the_broker_would_refuse_are_errors() {
        for (m, property) in [
            (
                Message::new("t", "").with_user_property("a\0", "b"),
                "User Property name",
            ),
            (
                Message::new("t", "").with_user_property("a", "\u{1}"),
                "User Property value",
            ),
            (
                Message::new("t", "").with_content_type("x\u{7f}"),
                "Content Type",
            ),
            (
                Message::new("t", "").with_response_topic("r".repeat(65_536)),
                "Response Topic",
            ),
        ] {
            match m.properties() {
                Err(ClientError::InvalidProperty { property: p, .. }) => assert_eq!(p, property),
                other => panic!("{property}: {other:?}"),
            }
        }
        let big = Message::new("t", "").with_correlation_data(vec![0; 65_536]);
        assert!(matches!(
            big.properties(),
            Err(ClientError::InvalidProperty {
                property: "Correlation Data",
                ..
            })
        ));
    }
}
