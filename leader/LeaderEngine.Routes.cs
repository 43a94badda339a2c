using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport;
using GeoRelay.Engines;

namespace GeoRelay.Leader;

public sealed partial class LeaderEngine
{
    /// <summary>Per datacenter: route, connection state and counters, for status pages and the demo.</summary>
    public readonly record struct DatacenterStatus(string Name, string Route, bool Connected, ulong Delivered, ulong MinDurable,
        long BytesSent, long EntryBytesSent, long Batches, long Failovers, long InflightBytes, TimeSpan DirectTime,
        long DirectFallbacks = 0, long RelayReturns = 0, long Failbacks = 0);

    public List<DatacenterStatus> Status()
    {
        var list = new List<DatacenterStatus>(_datacenters.Length);
        long now = _env.NowMicros;
        foreach (var dc in _datacenters)
        {
            ulong min = ulong.MaxValue;
            foreach (var m in dc.Members) min = Math.Min(min, m.Durable);
            long direct = dc.DirectMicrosTotal + (dc.DirectSinceMicros >= 0 && dc.HasRelays ? now - dc.DirectSinceMicros : 0);
            list.Add(new DatacenterStatus(dc.Config.Name, dc.IsDirect ? "direct" : "relay " + dc.CurrentRelayId,
                dc.IsDirect ? AnyDirect(dc) : dc.RelayConnection >= 0 && dc.RelaySynced, dc.Delivered, min == ulong.MaxValue ? 0 : min,
                dc.BytesSent, dc.EntryBytesSent, dc.Batches, dc.Failovers, dc.InflightBytes, TimeSpan.FromMicroseconds(direct),
                dc.DirectFallbacks, dc.RelayReturns, dc.Failbacks));
        }
        return list;
    }

    private static bool AnyDirect(DatacenterState dc)
    {
        foreach (var m in dc.Members) if (m.DirectConnection >= 0) return true;
        return false;
    }

    /// <summary>Failure detection, dials, relay probes in direct mode.</summary>
    private void CheckRoutes(long now)
    {
        if (Stopping) return; // no dials or failovers while the node shuts down
        long failoverAfter = Micros(_topology.Defaults.FailoverAfter);
        foreach (var dc in _datacenters)
        {
            if (!dc.IsDirect)
            {
                if (dc.RelayConnection >= 0)
                {
                    int conn = dc.RelayConnection;
                    long limit = dc.FailoverLimitMicros(failoverAfter, now);
                    if (now - dc.LastHeardMicros > limit)
                    {
                        dc.NoteTimeout(failoverAfter, now);
                        FailRelay(dc, $"silent for {(now - dc.LastHeardMicros) / 1000} ms{Damped(limit, failoverAfter)}");
                        Outbox.Add(EngineCommand.Close(conn, CodecError.Protocol, "no heartbeat or ack within failover-after"));
                    }
                    else if (dc.RelaySynced && dc.RetainedAcked < dc.RetainedSentThrough && now - dc.LastAckProgressMicros > limit)
                    {
                        dc.NoteTimeout(failoverAfter, now);
                        // Alive but not taking what it is sent (wedged, or its link too slow to keep up).
                        FailRelay(dc, $"acked nothing new for {(now - dc.LastAckProgressMicros) / 1000} ms ({dc.RetainedAcked} of {dc.RetainedSentThrough}){Damped(limit, failoverAfter)}");
                        Outbox.Add(EngineCommand.Close(conn, CodecError.Protocol, "no ack progress within failover-after"));
                    }
                }
                else if (!dc.RelayDialPending[dc.CurrentRelay] && dc.RelayBackoff[dc.CurrentRelay].Due(now))
                {
                    dc.RelayDialPending[dc.CurrentRelay] = true;
                    dc.LastHeardMicros = now;
                    Outbox.Add(EngineCommand.Dial(dc.Config.Relays[dc.CurrentRelay]));
                }
                if (dc.CurrentRelay > 0 && _options.UseRelays) ProbeForFailback(dc, now);
                continue;
            }
            // Direct: keep a link to every member, and probe the relays with back-off.
            foreach (var member in dc.Members)
            {
                if (member.DirectConnection < 0 && !member.DialPending && member.Backoff.Due(now))
                {
                    member.DialPending = true;
                    Outbox.Add(EngineCommand.Dial(member.Id));
                }
            }
            if (!_options.UseRelays || dc.Config.IsLeaderDatacenter) continue;
            for (int p = 0; p < dc.Config.Relays.Count; p++)
            {
                if (dc.RelayDialPending[p] || !dc.RelayBackoff[p].Due(now)) continue;
                dc.RelayDialPending[p] = true;
                Outbox.Add(EngineCommand.Dial(dc.Config.Relays[p]));
            }
        }
    }

    /// <summary>
    /// On a relay of lower priority: dials the relays before it now and then (each dial a probe, closed once it
    /// answers), and moves the datacenter back to the first that has answered every probe for failback-after. The
    /// standby it fails back to was fed by the current relay all along, so it is warm; the current relay becomes its
    /// standby. Nothing is lost or repeated: the new relay's first DcAck says where to resume, as after a failover.
    /// </summary>
    private void ProbeForFailback(DatacenterState dc, long now)
    {
        long failbackAfter = dc.FailbackAfterMicros(Micros(_topology.Defaults.FailbackAfter));
        for (int p = 0; p < dc.CurrentRelay; p++)
        {
            if (dc.HealthySinceMicros[p] >= 0 && now - dc.HealthySinceMicros[p] >= failbackAfter && dc.RelayConnection >= 0)
            {
                FailBack(dc, p, now);
                return;
            }
            if (dc.RelayDialPending[p] || !dc.RelayBackoff[p].Due(now)) continue;
            dc.RelayDialPending[p] = true;
            // The next probe waits a while even when this one answers (a failed one backs off from here instead).
            dc.RelayBackoff[p].RetryAtMicros = now + FailbackProbeEveryMicros;
            Outbox.Add(EngineCommand.Dial(dc.Config.Relays[p]));
        }
    }

    private long FailbackProbeEveryMicros => Math.Max(Micros(_topology.Defaults.FailoverAfter), Micros(_topology.Defaults.FailbackAfter) / 10);

    private void FailBack(DatacenterState dc, int to, long now)
    {
        int from = dc.CurrentRelay;
        LeaderLog.Failback(_logger, dc.Config.Name, dc.Config.Relays[from], dc.Config.Relays[to], (now - dc.HealthySinceMicros[to]) / 1000);
        Outbox.Add(EngineCommand.Close(dc.RelayConnection, CodecError.None, $"failing back to {dc.Config.Relays[to]}"));
        if (_links.Remove(dc.RelayConnection, out var link)) link.Channel.Dispose();
        LeaveRelay(dc);
        dc.CurrentRelay = to;
        dc.RelayBackoff[to].Succeed();
        dc.Failbacks++;
        dc.LastFailbackMicros = now;
        LeaderMetrics.Failbacks.Add(1, new KeyValuePair<string, object?>("datacenter", dc.Config.Name));
    }

    private static string Damped(long limit, long failoverAfter) =>
        limit == failoverAfter ? "" : $"; limit {limit / 1000} ms after recent failovers";

    /// <summary>The current relay is gone: move to the next one in priority order, or to direct sends.</summary>
    private void FailRelay(DatacenterState dc, string reason)
    {
        if (dc.IsDirect) return;
        long now = _env.NowMicros;
        int failed = dc.CurrentRelay;
        dc.Health[failed] = RelayHealth.Failed;
        dc.NoteRelayFailed(Micros(_topology.Defaults.FailbackAfter), now);
        dc.RelayBackoff[failed].Fail(now, Micros(_options.ReconnectInitial), Micros(_options.ReconnectMax), _random);
        LeaveRelay(dc);
        dc.Failovers++;
        var tag = new KeyValuePair<string, object?>("datacenter", dc.Config.Name);
        LeaderMetrics.Failovers.Add(1, tag);
        int next = -1;
        for (int i = 1; i < dc.Config.Relays.Count; i++)
        {
            int candidate = (failed + i) % dc.Config.Relays.Count;
            // A relay that failed earlier is worth a try again once its back-off has run out (it may have restarted).
            if (dc.Health[candidate] != RelayHealth.Failed || dc.RelayBackoff[candidate].Due(now)) { next = candidate; break; }
        }
        dc.CurrentRelay = next;
        if (next < 0)
        {
            // Every relay has failed: direct mode; probes restart from a fresh health view.
            for (int i = 0; i < dc.Health.Length; i++) dc.Health[i] = RelayHealth.Unknown;
            dc.DirectSinceMicros = now;
            dc.DirectFallbacks++;
            LeaderMetrics.DirectFallbacks.Add(1, tag);
            LeaderLog.DirectFallback(_logger, dc.Config.Name);
        }
        else
        {
            dc.RelayBackoff[next].Succeed();
        }
        LeaderLog.Failover(_logger, dc.Config.Name, dc.Config.Relays[failed], reason, next < 0 ? "direct" : dc.Config.Relays[next]);
    }

    /// <summary>
    /// The datacenter's relay link is gone (failed, or left for failback): nothing sent on it counts any more, members are
    /// unreachable until the next route says where they stand, and failback probes start over.
    /// </summary>
    private static void LeaveRelay(DatacenterState dc)
    {
        dc.RelayConnection = -1;
        dc.RelaySynced = false;
        foreach (var m in dc.Members) m.Reachable = false;
        ResetInflight(dc);
        Array.Fill(dc.HealthySinceMicros, -1);
    }

    private void CloseDirectLinks(DatacenterState dc, string reason)
    {
        foreach (var m in dc.Members)
        {
            if (m.DirectConnection >= 0)
            {
                Outbox.Add(EngineCommand.Close(m.DirectConnection, CodecError.None, reason));
                if (_links.TryGetValue(m.DirectConnection, out var link))
                {
                    _links.Remove(m.DirectConnection);
                    link.Channel.Dispose();
                }
                m.DirectConnection = -1;
            }
            m.Reachable = false;
        }
        ResetInflight(dc);
    }

    private static void ResetInflight(DatacenterState dc)
    {
        dc.Inflight.Clear();
        dc.InflightBytes = 0;
    }

    private void SendHeartbeats(long now)
    {
        long interval = Micros(_topology.Defaults.Heartbeat);
        foreach (var (connection, link) in _links)
        {
            if (link.Kind is not (LinkKind.Relay or LinkKind.Member)) continue;
            if (now - link.Channel.LastSentMicros < interval) continue;
            _scratch.Clear();
            new Heartbeat(Epoch, _commitIndex, WallClock.UnixMicros()).Write(_scratch, ref link.Channel.TxDelta);
            var frame = link.Channel.Frame(FrameType.Heartbeat, _scratch.WrittenSpan, compress: false);
            link.Channel.LastSentMicros = now;
            Outbox.Add(EngineCommand.Send(connection, frame));
        }
    }
}
