//! The subject of a client certificate, read from its DER bytes: the first
//! common name for `use_identity_as_username`, and the whole subject for
//! `use_subject_as_username`, written as Mosquitto writes it (OpenSSL's
//! `X509_NAME_print_ex` with `XN_FLAG_RFC2253`): the attributes last
//! first, `,` between RDNs and `+` inside one, OpenSSL's short names (`CN`,
//! `O`, `emailAddress`, ...) or the dotted OID of an unknown type with the
//! value as `#` and the hex of its DER, and RFC 2253 escapes, every byte
//! above 0x7F and every control byte as `\XX`.
//!
//! rustls has verified the certificate, but every byte of it still comes
//! from the peer: the walk is bounded by the input, never indexes out of
//! range, and refuses what it cannot read with a reason; no panics.

/// DER tags this walk looks at.
mod tag {
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    pub const OID: u8 = 0x06;
    /// `version [0] EXPLICIT` of a TBSCertificate.
    pub const VERSION: u8 = 0xA0;
    pub const UTF8_STRING: u8 = 0x0C;
    pub const NUMERIC_STRING: u8 = 0x12;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const T61_STRING: u8 = 0x14;
    pub const IA5_STRING: u8 = 0x16;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const VISIBLE_STRING: u8 = 0x1A;
    pub const UNIVERSAL_STRING: u8 = 0x1C;
    pub const BMP_STRING: u8 = 0x1E;
}

/// Longest subject written: a user name is an MQTT string.
pub(crate) const MAX_SUBJECT: usize = 65_535;

/// Most attributes read from one subject (a real one has a handful).
const MAX_ATTRIBUTES: usize = 256;

/// Why a subject is not a user name (for the log line).
pub(crate) type Refusal = &'static str;

const MALFORMED: Refusal = "the client certificate's subject is not a well-formed X.509 name";

/// One DER element at the start of `der`: (tag, contents, rest).
fn der_next(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest.get(n..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// The contents of the subject Name (its RDNs) of a DER certificate.
fn subject(cert: &[u8]) -> Option<&[u8]> {
    let (tag::SEQUENCE, certificate, _) = der_next(cert)? else {
        return None;
    };
    let (tag::SEQUENCE, tbs, _) = der_next(certificate)? else {
        return None;
    };
    // version [0] (optional), serial, signature, issuer, validity, subject.
    let mut rest = tbs;
    let (tag, _, after) = der_next(rest)?;
    if tag == tag::VERSION {
        rest = after;
    }
    for _ in 0..4 {
        rest = der_next(rest)?.2;
    }
    match der_next(rest)? {
        (tag::SEQUENCE, name, _) => Some(name),
        _ => None,
    }
}

/// One attribute of a name.
struct Attribute<'a> {
    /// Which RDN it is in (attributes of one RDN are joined with `+`).
    rdn: usize,
    /// The content bytes of its type's OID.
    oid: &'a [u8],
    /// Its value's tag and contents.
    tag: u8,
    value: &'a [u8],
}

/// The attributes of a Name's contents, in DER order.
fn attributes(mut name: &[u8]) -> Result<Vec<Attribute<'_>>, Refusal> {
    let mut out = Vec::new();
    let mut rdn = 0;
    while !name.is_empty() {
        let (tag::SET, mut set, next) = der_next(name).ok_or(MALFORMED)? else {
            return Err(MALFORMED);
        };
        name = next;
        while !set.is_empty() {
            let (tag::SEQUENCE, atv, next) = der_next(set).ok_or(MALFORMED)? else {
                return Err(MALFORMED);
            };
            set = next;
            let (tag::OID, oid, value) = der_next(atv).ok_or(MALFORMED)? else {
                return Err(MALFORMED);
            };
            let (tag, value, after) = der_next(value).ok_or(MALFORMED)?;
            if !after.is_empty() || oid.is_empty() {
                return Err(MALFORMED);
            }
            if out.len() == MAX_ATTRIBUTES {
                return Err("the client certificate's subject has too many attributes");
            }
            out.push(Attribute {
                rdn,
                oid,
                tag,
                value,
            });
        }
        rdn += 1;
    }
    Ok(out)
}

/// The first common name (OID 2.5.4.3) of the subject, as Mosquitto takes
/// it for `use_identity_as_username`; its bytes as text (lossy).
pub(crate) fn subject_cn(cert: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let attributes = attributes(subject(cert)?).ok()?;
    let cn = attributes.iter().find(|a| a.oid == CN)?;
    Some(String::from_utf8_lossy(cn.value).into_owned())
}

/// The whole subject as Mosquitto's `use_subject_as_username` writes it,
/// such as `CN=alice,OU=Line 2,O=Example\, Inc.,C=GB`.
pub(crate) fn subject_rfc2253(cert: &[u8]) -> Result<String, Refusal> {
    let attributes = attributes(subject(cert).ok_or(MALFORMED)?)?;
    if attributes.is_empty() {
        return Err("the client certificate's subject is empty");
    }
    let mut out = String::new();
    let mut previous = None;
    for a in attributes.iter().rev() {
        match previous {
            Some(rdn) if rdn == a.rdn => out.push('+'),
            Some(_) => out.push(','),
            None => {}
        }
        previous = Some(a.rdn);
        match short_name(a.oid) {
            Some(name) => {
                out.push_str(name);
                out.push('=');
                value(&mut out, a.tag, a.value)?;
            }
            None => {
                dotted(&mut out, a.oid)?;
                out.push('=');
                dump(&mut out, a.tag, a.value);
            }
        }
        if out.len() > MAX_SUBJECT {
            return Err("the client certificate's subject is longer than a user name may be");
        }
    }
    Ok(out)
}

/// OpenSSL's short name of an attribute type (content bytes of its OID).
#[rustfmt::skip]
fn short_name(oid: &[u8]) -> Option<&'static str> {
    // id-at (2.5.4.N): 55 04 N.
    if let [0x55, 0x04, n] = oid {
        return Some(match n {
            3 => "CN",
            4 => "SN",
            5 => "serialNumber",
            6 => "C",
            7 => "L",
            8 => "ST",
            9 => "street",
            10 => "O",
            11 => "OU",
            12 => "title",
            13 => "description",
            14 => "searchGuide",
            15 => "businessCategory",
            16 => "postalAddress",
            17 => "postalCode",
            18 => "postOfficeBox",
            19 => "physicalDeliveryOfficeName",
            20 => "telephoneNumber",
            21 => "telexNumber",
            26 => "registeredAddress",
            41 => "name",
            42 => "GN",
            43 => "initials",
            44 => "generationQualifier",
            45 => "x500UniqueIdentifier",
            46 => "dnQualifier",
            51 => "houseIdentifier",
            54 => "dmdName",
            65 => "pseudonym",
            72 => "role",
            97 => "organizationIdentifier",
            100 => "dnsName",
            _ => return None,
        });
    }
    Some(match oid {
        // 1.2.840.113549.1.9.{1,2,8} (PKCS #9)
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01] => "emailAddress",
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x02] => "unstructuredName",
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x08] => "unstructuredAddress",
        // 0.9.2342.19200300.100.1.{1,3,25}
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x01] => "UID",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x03] => "mail",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19] => "DC",
        // 1.3.6.1.4.1.311.60.2.1.{1,2,3} (EV jurisdiction)
        [0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3C, 0x02, 0x01, 0x01] => "jurisdictionL",
        [0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3C, 0x02, 0x01, 0x02] => "jurisdictionST",
        [0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3C, 0x02, 0x01, 0x03] => "jurisdictionC",
        _ => return None,
    })
}

/// An OID's content bytes in dotted form (`1.2.3.4`).
fn dotted(out: &mut String, oid: &[u8]) -> Result<(), Refusal> {
    const BAD_OID: Refusal = "the client certificate's subject has a malformed attribute type";
    let mut arc: u64 = 0;
    let mut first = true;
    let mut fresh = true;
    for &b in oid {
        // A leading 0x80 is not DER; an arc past 64 bits is not real.
        if fresh && b == 0x80 {
            return Err(BAD_OID);
        }
        if arc > u64::MAX >> 7 {
            return Err(BAD_OID);
        }
        arc = (arc << 7) | u64::from(b & 0x7F);
        fresh = b & 0x80 == 0;
        if !fresh {
            continue;
        }
        if first {
            let (x, y) = match arc {
                0..40 => (0, arc),
                40..80 => (1, arc - 40),
                _ => (2, arc - 80),
            };
            out.push_str(&format!("{x}.{y}"));
            first = false;
        } else {
            out.push_str(&format!(".{arc}"));
        }
        arc = 0;
    }
    if fresh { Ok(()) } else { Err(BAD_OID) }
}

/// `#` and the hex of the value's DER encoding (tag, length, contents).
fn dump(out: &mut String, tag: u8, value: &[u8]) {
    out.push('#');
    let mut header = vec![tag];
    let len = value.len();
    if len < 0x80 {
        header.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        header.push(0x80 | significant.len() as u8);
        header.extend_from_slice(significant);
    }
    for &b in header.iter().chain(value) {
        push_hex(out, b);
    }
}

fn push_hex(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0F)]));
}

/// Where a character is in its value (RFC 2253 escapes a space at either
/// end and a `#` at the start; OpenSSL marks a one-character value as
/// last only).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    First,
    Middle,
    Last,
}

/// One byte of a value, escaped as OpenSSL's RFC 2253 flags escape it.
fn escaped(out: &mut String, b: u8, place: Place) {
    let backslash = matches!(b, b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';')
        || (place == Place::First && matches!(b, b' ' | b'#'))
        || (place == Place::Last && b == b' ');
    if !(0x20..=0x7E).contains(&b) {
        out.push('\\');
        push_hex(out, b);
    } else if backslash {
        out.push('\\');
        out.push(char::from(b));
    } else {
        out.push(char::from(b));
    }
}

/// A value of a known attribute type: a string type as text, anything
/// else dumped (OpenSSL's `ASN1_STRFLGS_DUMP_UNKNOWN`).
fn value(out: &mut String, tag: u8, v: &[u8]) -> Result<(), Refusal> {
    const BAD_STRING: Refusal =
        "the client certificate's subject has a string that is not valid for its type";
    // Bytes per character; UTF8String is written byte by byte (its
    // bytes above 0x7F escaped one by one), the one-byte types as Latin-1.
    let width = match tag {
        tag::UTF8_STRING => 0,
        tag::NUMERIC_STRING
        | tag::PRINTABLE_STRING
        | tag::T61_STRING
        | tag::IA5_STRING
        | tag::UTC_TIME
        | tag::GENERALIZED_TIME
        | tag::VISIBLE_STRING => 1,
        tag::BMP_STRING => 2,
        tag::UNIVERSAL_STRING => 4,
        _ => {
            dump(out, tag, v);
            return Ok(());
        }
    };
    let step = width.max(1);
    if v.len() % step != 0 {
        return Err(BAD_STRING);
    }
    let count = v.len() / step;
    for (i, chunk) in v.chunks_exact(step).enumerate() {
        // Last wins over first, as in OpenSSL.
        let place = if i + 1 == count {
            Place::Last
        } else if i == 0 {
            Place::First
        } else {
            Place::Middle
        };
        if width == 0 {
            let b = chunk.first().copied().unwrap_or(0);
            escaped(out, b, place);
            continue;
        }
        let c = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        let c = char::from_u32(c).ok_or(BAD_STRING)?;
        let mut utf8 = [0u8; 4];
        for &b in c.encode_utf8(&mut utf8).as_bytes() {
            escaped(out, b, place);
        }
        if out.len() > MAX_SUBJECT {
            return Err("the client certificate's subject is longer than a user name may be");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{MAX_SUBJECT, subject_cn, subject_rfc2253};

    fn der(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if body.len() < 0x80 {
            v.push(body.len() as u8);
        } else {
            v.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
        }
        v.extend_from_slice(body);
        v
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0A];
    const OU: &[u8] = &[0x55, 0x04, 0x0B];
    const C: &[u8] = &[0x55, 0x04, 0x06];
    const EMAIL: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01];

    /// One attribute: (type OID bytes, value tag, value).
    type Atv<'a> = (&'a [u8], u8, &'a [u8]);

    /// A Name from RDNs, each a list of attributes.
    fn name(rdns: &[&[Atv<'_>]]) -> Vec<u8> {
        let mut body = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (oid, tag, value) in *rdn {
                let atv = [der(0x06, oid), der(*tag, value)].concat();
                set.extend(der(0x30, &atv));
            }
            body.extend(der(0x31, &set));
        }
        der(0x30, &body)
    }

    /// A UTF8String attribute as a one-attribute RDN.
    fn utf8<'a>(oid: &'a [u8], text: &'a str) -> [Atv<'a>; 1] {
        [(oid, 0x0C, text.as_bytes())]
    }

    /// A certificate skeleton: only the fields the walk reads.
    fn cert(subject: &[u8]) -> Vec<u8> {
        let tbs = [
            der(0xA0, &der(0x02, &[2])),
            der(0x02, &[1]),
            der(0x30, &[]),
            name(&[&utf8(CN, "issuer ca")]),
            der(0x30, &[]),
            subject.to_vec(),
            der(0x30, &[0; 200]),
        ]
        .concat();
        der(0x30, &der(0x30, &tbs))
    }

    #[test]
    fn subject_common_name() {
        let c = cert(&name(&[
            &utf8(O, "boxmq"),
            &utf8(CN, "alice"),
            &utf8(CN, "bob"),
        ]));
        assert_eq!(subject_cn(&c).as_deref(), Some("alice"));
        assert_eq!(subject_cn(&cert(&name(&[&utf8(O, "boxmq")]))), None);
        // Truncated or garbage input: no answer, no panic.
        for n in 0..c.len() {
            let _ = subject_cn(&c[..n]);
        }
        assert_eq!(subject_cn(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), None);
        assert_eq!(subject_cn(b"not DER at all"), None);
    }

    #[test]
    fn whole_subject_last_attribute_first() {
        // openssl req -subj "/C=GB/O=Example/OU=Line 2/CN=test client"
        let c = cert(&name(&[
            &[(C, 0x13, b"GB")],
            &utf8(O, "Example"),
            &utf8(OU, "Line 2"),
            &utf8(CN, "test client"),
        ]));
        assert_eq!(
            subject_rfc2253(&c).as_deref(),
            Ok("CN=test client,OU=Line 2,O=Example,C=GB")
        );
        // One RDN of two attributes: `+`, also written last first.
        let c = cert(&name(&[
            &utf8(O, "boxmq"),
            &[(CN, 0x0C, b"alice"), (EMAIL, 0x16, b"a@example.com")],
        ]));
        assert_eq!(
            subject_rfc2253(&c).as_deref(),
            Ok("emailAddress=a@example.com+CN=alice,O=boxmq")
        );
    }

    #[test]
    fn escapes_as_openssl_writes_them() {
        let one = |tag: u8, value: &[u8]| subject_rfc2253(&cert(&name(&[&[(CN, tag, value)]])));
        let ok = |s: &str| Ok(format!("CN={s}"));
        assert_eq!(
            one(0x0C, b"a,b+c\"d\\e<f>g;h"),
            ok(r#"a\,b\+c\"d\\e\<f\>g\;h"#)
        );
        assert_eq!(one(0x0C, b" #a # "), ok(r"\ #a #\ "));
        assert_eq!(one(0x0C, b"#a"), ok(r"\#a"));
        // A single character is "last" only: a lone `#` stays.
        assert_eq!(one(0x0C, b"#"), ok("#"));
        assert_eq!(one(0x0C, b" "), ok(r"\ "));
        assert_eq!(one(0x0C, b"a=b/c"), ok("a=b/c"));
        assert_eq!(one(0x0C, b"tab\there\x7F"), ok(r"tab\09here\7F"));
        // UTF-8 bytes one by one; Latin-1 (T61String) and BMPString
        // characters through UTF-8.
        assert_eq!(one(0x0C, "Zürich".as_bytes()), ok(r"Z\C3\BCrich"));
        assert_eq!(one(0x14, b"Z\xFCrich"), ok(r"Z\C3\BCrich"));
        assert_eq!(
            one(0x1E, &[0, b'Z', 0, 0xFC, 0x20, 0xAC]),
            ok(r"Z\C3\BC\E2\82\AC")
        );
        assert_eq!(one(0x1C, &[0, 1, 0xF6, 0x00]), ok(r"\F0\9F\98\80"));
        // Invalid UTF-8 in a UTF8String is escaped, not refused (as OpenSSL).
        assert_eq!(one(0x0C, b"\xFF"), ok(r"\FF"));
        // Other value types are dumped.
        assert_eq!(one(0x04, b"\x01\x02"), ok("#04020102"));
        assert_eq!(one(0x0C, b""), ok(""));
        // Strings of a width their length does not fit, code points that
        // are not characters: refused.
        assert!(one(0x1E, &[0, b'a', 0]).is_err());
        assert!(one(0x1C, &[0, 0, 0, b'a', 0]).is_err());
        assert!(one(0x1C, &[0, 0x11, 0, 0]).is_err());
        assert!(one(0x1E, &[0xD8, 0x00]).is_err());
    }

    #[test]
    fn unknown_types_as_dotted_oid_and_hex() {
        // 1.2.3.4 and 2.999.1 (a first byte past 80).
        let c = cert(&name(&[
            &[(&[0x2A, 0x03, 0x04], 0x0C, b"x")],
            &[(&[0x88, 0x37, 0x01], 0x13, b"ab")],
        ]));
        assert_eq!(
            subject_rfc2253(&c).as_deref(),
            Ok("2.999.1=#13026162,1.2.3.4=#0C0178")
        );
        // Malformed OIDs: a non-minimal arc, a last byte that goes on.
        for oid in [&[0x2A, 0x80, 0x01][..], &[0x2A, 0x83]] {
            let c = cert(&name(&[&[(oid, 0x0C, b"x")]]));
            assert!(subject_rfc2253(&c).is_err(), "{oid:02X?}");
        }
        // A long value dumps with a long-form length.
        let long = vec![b'a'; 200];
        let c = cert(&name(&[&[(&[0x2A, 0x03], 0x0C, &long)]]));
        let s = subject_rfc2253(&c).expect("long");
        assert!(s.starts_with("1.2.3=#0C81C86161"), "{s}");
    }

    #[test]
    fn malformed_and_oversized_subjects_are_refused_without_panic() {
        assert!(subject_rfc2253(&cert(&name(&[]))).is_err(), "empty subject");
        let good = cert(&name(&[&utf8(O, "boxmq"), &utf8(CN, "alice")]));
        for n in 0..good.len() {
            let _ = subject_rfc2253(&good[..n]);
        }
        // Every byte flipped in turn.
        for i in 0..good.len() {
            let mut c = good.clone();
            c[i] ^= 0xFF;
            if let Ok(s) = subject_rfc2253(&c) {
                assert!(s.bytes().all(|b| (0x20..0x7F).contains(&b)), "{s:?}");
            }
        }
        // An RDN that is not a SET, an attribute with a third element.
        let not_set = der(0x30, &der(0x30, &[der(0x06, CN), der(0x0C, b"a")].concat()));
        assert!(subject_rfc2253(&cert(&not_set)).is_err());
        let extra = der(
            0x30,
            &der(
                0x31,
                &der(
                    0x30,
                    &[der(0x06, CN), der(0x0C, b"a"), der(0x05, &[])].concat(),
                ),
            ),
        );
        assert!(subject_rfc2253(&cert(&extra)).is_err());
        // Too long for a user name: 200 RDNs of 400 escaped bytes each.
        let big = [b','; 200];
        let rdns: Vec<[Atv<'_>; 1]> = (0..200).map(|_| [(CN, 0x0C, &big[..])]).collect();
        let refs: Vec<&[Atv<'_>]> = rdns.iter().map(|r| &r[..]).collect();
        let c = cert(&name(&refs));
        assert!(c.len() < MAX_SUBJECT);
        assert!(subject_rfc2253(&c).is_err());
    }
}
