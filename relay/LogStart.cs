using GeoRelay.Codec.Frames;
using GeoRelay.Storage;

namespace GeoRelay.Relay;

internal static class LogStart
{
    /// <summary>
    /// Whether <paramref name="log"/> must be dropped to take the leader's from <see cref="InstallSnapshot.Index"/>: not
    /// when it holds that very entry (log matching: it is the leader's up to there), nor when it starts past it (its start
    /// is checked like any entry as the leader's arrive), nor when it is already empty and pinned there.
    /// </summary>
    public static bool MustReset(IEntryLog log, in InstallSnapshot install, out bool holds)
    {
        holds = log.TryGet(install.Index, out var held) && held.Epoch == install.IndexEpoch;
        bool startsPast = log.LastIndex > 0 && log.FirstIndex > install.Index;
        bool alreadyThere = log.LastIndex == 0 && log.NextIndex == install.Index;
        return !holds && !startsPast && !alreadyThere;
    }
}
