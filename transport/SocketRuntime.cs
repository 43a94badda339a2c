namespace GeoRelay.Transport;

/// <summary>Process-wide socket settings; call before the first socket is created.</summary>
public static class SocketRuntime
{
    private const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// On Linux, .NET hands every socket completion from its epoll thread to the thread pool; on a loaded machine
    /// that hop waits for a scheduler slot, once per frame and process on the way (measured: publish-to-learner
    /// p50 10–250 ms and relays silent long enough to fail over, against a few ms inline). Read loops here only
    /// take the engine lock and send without blocking, so a daemon runs completions inline unless the operator
    /// chose otherwise (the variable set to anything, 0 included). Not for a process that hosts several engines
    /// talking to each other (the in-process demo stalled with it: acks stopped, handshakes timed out).
    /// </summary>
    public static void PreferInlineCompletions()
    {
        if (Environment.GetEnvironmentVariable(InlineCompletions) is null)
            Environment.SetEnvironmentVariable(InlineCompletions, "1");
    }
}
