using System;
using System.Collections.Concurrent;
using System.Threading;

namespace BoxMq
{
    /// <summary>
    /// Objects that native code reaches through a user_data key: the
    /// brokers' hooks (HookRegistry) and the callback subscriptions
    /// (Callbacks). A key is a number, not a GCHandle, so a late or stray
    /// call from native code finds nothing instead of a freed handle. Safe
    /// from any thread.
    /// </summary>
    internal sealed class Registry<T> where T : class
    {
        private readonly ConcurrentDictionary<long, T> targets = new ConcurrentDictionary<long, T>();
        private long next;

        /// <summary>Registers a target; the key goes to native code as user_data.</summary>
        internal long Add(T target)
        {
            long key = Interlocked.Increment(ref next);
            targets[key] = target;
            return key;
        }

        /// <summary>Forgets a key (its native side no longer calls with it).</summary>
        internal void Remove(long key)
        {
            T gone;
            targets.TryRemove(key, out gone);
        }

        /// <summary>How many targets are registered.</summary>
        internal int Count
        {
            get { return targets.Count; }
        }

        /// <summary>The target of a user_data key, or null when it is gone.</summary>
        internal T Find(IntPtr userData)
        {
            T target;
            return targets.TryGetValue(userData.ToInt64(), out target) ? target : null;
        }
    }
}
