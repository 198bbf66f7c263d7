using System;

namespace BoxMq
{
    /// <summary>
    /// The negative return codes of the C ABI (BOXMQ_ERR_* in boxmq.h),
    /// with the same values.
    /// </summary>
    public enum BoxMqErrorCode
    {
        /// <summary>A bad argument: a QoS other than 0, 1, 2, a listener index out of range.</summary>
        InvalidArgument = -1,
        /// <summary>The config text is invalid (the message names the line), or a file it names cannot be read.</summary>
        Config = -2,
        /// <summary>A listener could not be bound (port in use, permission denied); the state becomes Failed.</summary>
        Bind = -3,
        /// <summary>The event loop could not be set up, or failed.</summary>
        Io = -4,
        /// <summary>The persistence directory cannot be used (or another broker holds it).</summary>
        Persistence = -5,
        /// <summary>Start on a running broker.</summary>
        AlreadyRunning = -6,
        /// <summary>The broker is not running (never started, stopped, or failed).</summary>
        NotRunning = -7,
        /// <summary>The broker thread did not answer within 10 s.</summary>
        Timeout = -8,
        /// <summary>The broker refused the in-process client or the subscription (max_sessions, client id).</summary>
        Refused = -9,
        /// <summary>Invalid topic name or filter; the client keeps working.</summary>
        InvalidTopic = -10,
        /// <summary>The message would make a packet larger than max_packet_size.</summary>
        TooLarge = -11,
        /// <summary>The broker closed this client (its id was taken over, or the broker is stopping).</summary>
        Disconnected = -12,
        /// <summary>Too many QoS 2 messages of this client await completion; try again.</summary>
        Busy = -13,
        /// <summary>A thread for a callback subscription could not be started.</summary>
        Thread = -14,
        /// <summary>A bug in boxmq: a panic was caught at the C boundary.</summary>
        Panic = -15,
    }

    /// <summary>
    /// A call into boxmq failed: <see cref="Code"/> says how, the message is
    /// boxmq's own (boxmq_last_error), such as "cannot listen on
    /// 127.0.0.1:1883: Address already in use (os error 98)".
    /// </summary>
    public class BoxMqException : Exception
    {
        /// <summary>A failure with its code and boxmq's message.</summary>
        public BoxMqException(BoxMqErrorCode code, string message)
            : base(message)
        {
            Code = code;
            HResult = (int)code;
        }

        /// <summary>What failed, as the C ABI's return code.</summary>
        public BoxMqErrorCode Code { get; private set; }
    }
}
