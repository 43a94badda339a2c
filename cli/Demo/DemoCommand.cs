using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using GeoRelay.Engines;
using GeoRelay.Leader;
using GeoRelay.Cli;
using GeoRelay.Topology;
using GeoRelay.Wan;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace GeoRelay.Cli.Demo;

/// <summary>What `georelay demo` runs.</summary>
/// <param name="Learners">Learners per datacenter (in-process SDK clients).</param>
/// <param name="KillAt">When to stop the active relay of one remote datacenter; default half the duration.</param>
/// <param name="WanDelay">One-way delay added to every link between two regions (a WAN emulator in front of the peer port); zero for none.</param>
public sealed record DemoSettings(string? ConfigPath, TimeSpan Duration, int Rate, int Learners, bool Live, TimeSpan? KillAt = null, TimeSpan WanDelay = default);

/// <summary>
/// `georelay demo`: a leader, and every relay and member of the topology, in this process on loopback,
/// with a few learners per datacenter; publishes a stream, stops the active relay of one remote datacenter
/// halfway, and shows per datacenter each second: route, what was delivered, publish-to-learner latency,
/// commit lag, and the bytes sent across the region boundary against what direct fan-out would send.
/// </summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "Topology YAML (default: the bundled samples/three-regions.yaml)" };
        var duration = DurationOption.Create("--duration", "How long to publish", TimeSpan.FromSeconds(12));
        var rate = new Option<int>("--rate") { Description = "Entries per second to publish", DefaultValueFactory = _ => 10_000 };
        var learners = new Option<int>("--learners") { Description = "Learners per datacenter", DefaultValueFactory = _ => 3 };
        var plain = new Option<bool>("--plain") { Description = "Print plain lines instead of a live table (the default when stdout is not a terminal)" };
        var wanDelay = DurationOption.Create("--wan-delay", "One-way delay on every link between two regions; 0 for none", TimeSpan.FromMilliseconds(25));
        var command = new Command("demo", "Run a whole cluster in this process and watch it deliver") { config, duration, rate, learners, plain, wanDelay };
        command.SetAction((parse, ct) =>
        {
            bool live = !parse.GetValue(plain) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
            var settings = new DemoSettings(parse.GetValue(config), parse.GetValue(duration), Math.Max(1, parse.GetValue(rate)),
                Math.Max(0, parse.GetValue(learners)), live, WanDelay: parse.GetValue(wanDelay));
            return RunAsync(settings, Console.Out, ct);
        });
        return command;
    }

    public static string DefaultConfigPath => Path.Combine(AppContext.BaseDirectory, "samples", "three-regions.yaml");

    public static async Task<int> RunAsync(DemoSettings settings, TextWriter output, CancellationToken ct)
    {
        var result = TopologyLoader.LoadFile(settings.ConfigPath ?? DefaultConfigPath);
        if (!result.Success)
        {
            foreach (var p in result.Problems) Console.Error.WriteLine(p);
            return 2;
        }
        // The demo runs as the nodes should: mutual TLS on every link. A topology without its own tls section gets a
        // throwaway CA and node certificates in a temp folder, removed at the end.
        var topology = result.Config;
        string? throwawayCerts = null;
        if (topology.Tls is null)
        {
            throwawayCerts = Path.Combine(Path.GetTempPath(), $"georelay-demo-certs-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
            DevCertificates.Write(topology, throwawayCerts, TimeSpan.FromDays(1));
            topology = topology with
            {
                Tls = new TlsConfig { CaFile = Path.Combine(throwawayCerts, "ca.crt"), CertificateDirectory = throwawayCerts },
                Insecure = false,
            };
        }
        try
        {
            return await RunTopologyAsync(settings, topology, throwawayCerts is not null, output, ct);
        }
        finally
        {
            if (throwawayCerts is not null)
                try { Directory.Delete(throwawayCerts, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static async Task<int> RunTopologyAsync(DemoSettings settings, TopologyConfig topology, bool throwawayCerts, TextWriter output, CancellationToken ct)
    {
        // In the live view the table tells what happens; node warnings would tear it.
        using var loggers = LoggerFactory.Create(b =>
        {
            if (!settings.Live) b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
            b.SetMinimumLevel(LogLevel.Warning);
            b.AddFilter("georelay.demo.learner", LogLevel.Error); // reconnects show in the table
        });
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = settings.Live ? AnsiSupport.Detect : AnsiSupport.No,
            Interactive = settings.Live ? InteractionSupport.Detect : InteractionSupport.No,
        });
        console.Profile.Width = Math.Max(console.Profile.Width, 140);

        // Thirteen nodes' loops and the learners share this process: a warm thread pool keeps a busy
        // start from starving heartbeats into false failovers.
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(io, 64));
        var wanLinks = new List<WanLink>();
        try
        {
            await using var cluster = LocalCluster.Start(topology, LeaderOptions.Default, loggers,
                settings.WanDelay > TimeSpan.Zero ? (from, to, address, spare) => ThroughWan(from, to, address, spare, settings.WanDelay, wanLinks) : null);
            return await RunClusterAsync(cluster, settings, throwawayCerts, console, output, loggers, ct);
        }
        finally
        {
            foreach (var link in wanLinks) await link.DisposeAsync();
        }
    }

    /// <summary>Links within a region are direct; a link between regions goes through an emulated WAN link with a one-way delay.</summary>
    private static NodeEndpoint ThroughWan(NodeConfig from, NodeConfig to, NodeEndpoint address, IPEndPoint spare, TimeSpan delay, List<WanLink> links)
    {
        if (from.Datacenter == to.Datacenter) return address;
        var link = WanLink.Start(spare, (IPEndPoint)address.ToEndPoint(),
            WanLinkOptions.Default with { OneWayDelay = delay }, $"{from.Id}->{to.Id}");
        links.Add(link);
        return new NodeEndpoint("127.0.0.1", link.ListenEndPoint.Port);
    }

    private static async Task<int> RunClusterAsync(LocalCluster cluster, DemoSettings settings, bool throwawayCerts, IAnsiConsole console, TextWriter output, ILoggerFactory loggers, CancellationToken ct)
    {
        var topology = cluster.Topology;
        var regions = new List<DemoRegion>();
        foreach (var route in RoutePlanner.Plan(topology, _ => true))
            regions.Add(new DemoRegion(topology, route, settings.Learners, loggers));
        try
        {
            await using var webConsole = await DemoConsole.StartAsync(cluster, loggers);
            var run = new DemoRun(cluster, regions, settings, output);
            string wan = settings.WanDelay > TimeSpan.Zero ? $", {settings.WanDelay.TotalMilliseconds:0} ms one-way between regions" : ", no WAN delay";
            string tls = throwawayCerts ? "mutual TLS between nodes (throwaway certificates), TLS to learners" : "TLS from the topology's tls section";
            console.MarkupLine(Markup.Escape($"GeoRelay demo: cluster {topology.Cluster}, {topology.Datacenters.Count} datacenters, {cluster.Members.Count} members, " +
                                             $"{cluster.Relays.Count} relays, {settings.Learners} learners per datacenter{wan}, {tls}; publishing {settings.Rate:N0} entries/s for {settings.Duration.TotalSeconds:0} s"));
            output.WriteLine($"console: {webConsole.Address}"); // one line, never wrapped: it is to be copied
            if (!await run.WaitForRoutesAsync(TimeSpan.FromSeconds(20), ct))
                console.MarkupLine("[yellow]Not every datacenter is connected yet; publishing anyway.[/]");
            bool ok = false;
            if (settings.Live)
            {
                await console.Live(run.View()).StartAsync(async ctx =>
                {
                    void Show(IRenderable view) { ctx.UpdateTarget(view); ctx.Refresh(); }
                    await run.PublishAsync(Show, ct);
                    ok = await run.SettleAsync(ct);
                    Show(run.View());
                });
            }
            else
            {
                await run.PublishAsync(null, ct);
                ok = await run.SettleAsync(ct);
            }
            run.PrintSummary(ok);
            return ok ? 0 : 1;
        }
        finally
        {
            foreach (var r in regions) await r.DisposeAsync();
        }
    }

    /// <summary>The publishing loop, the once-a-second view, and the summary.</summary>
    private sealed class DemoRun(LocalCluster cluster, List<DemoRegion> regions, DemoSettings settings, TextWriter output)
    {
        private readonly Stopwatch _clock = new();
        private readonly List<string> _events = new();
        private readonly List<long> _payloadBytesThrough = [0]; // [i] = payload bytes of entries 1..i
        private readonly Dictionary<string, (double P50, double P99)> _window = new();
        private long _published;
        private ulong _last;
        // The leader as last seen, and its indexes: kept while an election runs, so the view has something to show.
        private string? _leaderId;
        private ulong _term, _commit, _lastIndex;
        private IReadOnlyList<LeaderEngine.DatacenterStatus> _status = [];
        private TimeSpan? _leaderKilledAt;

        /// <summary>Reads who leads and what it reports, and notes a change of leader as an event.</summary>
        private void Observe()
        {
            if (cluster.Leading() is not { } lead) return;
            var (status, commit, last, term) = lead.Host.Invoke(_ => (lead.Engine.Status(), lead.Engine.CommitIndex, lead.Engine.LastIndex, lead.Engine.Epoch));
            _status = status;
            (_commit, _lastIndex) = (commit, last);
            if (lead.Id == _leaderId && term == _term) return;
            bool first = _term == 0;
            (_leaderId, _term) = (lead.Id, term);
            if (first) return;
            string after = _leaderKilledAt is { } killed ? string.Create(CultureInfo.InvariantCulture, $", {(_clock.Elapsed - killed).TotalSeconds:0.0} s after the leader died") : "";
            _leaderKilledAt = null;
            Event($"{lead.Id} leads term {term}{after}; writes go to it");
        }

        /// <summary>Until a leader is elected and every datacenter's route is up (relay synced, or direct links open), bounded.</summary>
        public async Task<bool> WaitForRoutesAsync(TimeSpan bound, CancellationToken ct)
        {
            var wait = Stopwatch.StartNew();
            while (wait.Elapsed < bound)
            {
                Observe();
                // With elections, the story starts with the preferred leader leading (a member may win the first election).
                bool preferred = cluster.Leader is not null || _leaderId == cluster.Topology.PreferredLeaderId;
                if (preferred && _status.Count > 0 && _status.All(s => s.Connected)) return true;
                await Task.Delay(20, ct);
            }
            return false;
        }

        /// <summary>Appends one entry on whoever leads; 0 when none does or its window is full (try again shortly).</summary>
        private async Task<ulong> AppendAsync(ReadOnlyMemory<byte> payload, CancellationToken ct)
        {
            if (cluster.Leader is { } fixedLeader) return (await fixedLeader.AppendAsync(payload, default, ct)).Index;
            if (_leaderId is null || !cluster.Voters.TryGetValue(_leaderId, out var voter)) return 0;
            return voter.Host.Invoke(_ => voter.Engine.TryAppend(default, payload, WallClock.UnixMicros()));
        }

        public async Task PublishAsync(Action<IRenderable>? live, CancellationToken ct)
        {
            _clock.Start();
            bool elections = cluster.Leader is null;
            // The relay first, then (with elections) the leader, which comes back later and leads again.
            var killRelayAt = settings.KillAt ?? settings.Duration * (elections ? 0.3 : 0.5);
            var killLeaderAt = settings.Duration * 0.45;
            var restartLeaderAt = settings.Duration * 0.65;
            bool relayKilled = false, leaderKilled = !elections, leaderRestarted = !elections;
            string? killed = null;
            var nextReport = TimeSpan.FromSeconds(1);
            var payload = new byte[256];
            while (_clock.Elapsed < settings.Duration && !ct.IsCancellationRequested)
            {
                Observe();
                long due = (long)(_clock.Elapsed.TotalSeconds * settings.Rate);
                while (_published < due && !ct.IsCancellationRequested)
                {
                    int n = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
                        $"{{\"order\":{_published},\"sku\":\"SKU-{_published % 977:D5}\",\"qty\":{_published % 7 + 1},\"region\":\"{(_published % 3 == 0 ? "eu" : "us")}\"}}"), payload);
                    ulong index = await AppendAsync(payload.AsMemory(0, n), ct);
                    if (index == 0) break; // no leader, or no room: the backlog goes out once there is
                    _last = index;
                    while ((ulong)_payloadBytesThrough.Count <= index) _payloadBytesThrough.Add(_payloadBytesThrough[^1] + n);
                    _published++;
                }
                if (!relayKilled && _clock.Elapsed >= killRelayAt)
                {
                    relayKilled = true;
                    await KillActiveRelayAsync();
                }
                if (!leaderKilled && _clock.Elapsed >= killLeaderAt && _leaderId is { } victim)
                {
                    leaderKilled = true;
                    killed = victim;
                    await cluster.CrashVoterAsync(victim);
                    _leaderKilledAt = _clock.Elapsed;
                    Event(string.Create(CultureInfo.InvariantCulture,
                        $"killed the leader {victim} (term {_term}): the other voters elect a new one; {_lastIndex - Math.Min(_lastIndex, _commit):N0} entries it held were not yet committed (never acknowledged)"));
                    _leaderId = null;
                }
                if (!leaderRestarted && _clock.Elapsed >= restartLeaderAt && killed is not null)
                {
                    leaderRestarted = true;
                    cluster.RestartVoter(killed);
                    Event(killed == cluster.Topology.PreferredLeaderId
                        ? $"restarted {killed} on its data: it rejoins as a follower, catches up, and leadership moves back to it (the preferred leader)"
                        : $"restarted {killed} on its data: it rejoins as a follower");
                }
                if (_clock.Elapsed >= nextReport)
                {
                    Report(live);
                    nextReport += TimeSpan.FromSeconds(1);
                }
                await Task.Delay(5, ct);
            }
        }

        /// <summary>Stops the active relay of the first remote datacenter that has one (preferring one with a spare).</summary>
        private async Task KillActiveRelayAsync()
        {
            string? victim = null, dcName = null;
            foreach (var s in _status)
            {
                var dc = cluster.Topology.GetDatacenter(s.Name);
                if (dc.Name == LeaderDatacenter || !s.Route.StartsWith("relay ", StringComparison.Ordinal)) continue;
                if (victim is null || dc.Relays.Count > 1 && cluster.Topology.GetDatacenter(dcName!).Relays.Count < 2)
                    (victim, dcName) = (s.Route["relay ".Length..], s.Name);
            }
            if (victim is null)
            {
                Event("no datacenter is served through a relay: nothing to fail over");
                return;
            }
            await cluster.StopRelayAsync(victim);
            Event($"stopped relay {victim}, the active route of {dcName}");
        }

        private string? LeaderDatacenter => _leaderId is { } id ? cluster.Topology.GetNode(id).Datacenter : null;

        private void Event(string text)
        {
            string line = string.Create(CultureInfo.InvariantCulture, $"t={_clock.Elapsed.TotalSeconds:0.0}s: {text}");
            lock (_events) _events.Add(line);
            if (!settings.Live) output.WriteLine("Event " + line);
        }

        private void Report(Action<IRenderable>? live)
        {
            foreach (var r in regions) _window[r.Name] = r.TakeWindow();
            if (live is not null) live(View());
            else PrintLines();
        }

        /// <summary>What one copy per member and learner, uncompressed, would have carried to the region for what it acked.</summary>
        private long DirectCost(DemoRegion region, ulong acked)
        {
            long bytes = _payloadBytesThrough[(int)Math.Min(acked, (ulong)(_payloadBytesThrough.Count - 1))];
            return bytes * (region.Members + region.LearnerCount);
        }

        private IEnumerable<(DemoRegion Region, LeaderEngine.DatacenterStatus Status)> Rows()
        {
            Observe();
            var status = _status;
            foreach (var r in regions)
                foreach (var s in status)
                    if (s.Name == r.Name) yield return (r, s);
        }

        public IRenderable View()
        {
            var table = new Table().Title(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                    $"t={_clock.Elapsed.TotalSeconds:0}s   leader {_leaderId ?? "(election)"}   term {_term}   published {_published:N0}   commit {_commit:N0}   commit lag {Lag(_lastIndex, _commit):N0}")))
                .AddColumns("datacenter", "route", "acked by members", "learners got", "p50", "p99", "commit lag", "bytes sent", "direct fan-out", "ratio", "failovers");
            foreach (var (r, s) in Rows())
            {
                var (p50, p99) = _window.GetValueOrDefault(r.Name, (double.NaN, double.NaN));
                long direct = DirectCost(r, s.Delivered);
                string route = s.Route.StartsWith("relay", StringComparison.Ordinal) ? $"[green]{Markup.Escape(s.Route)}[/]" : $"[yellow]{Markup.Escape(s.Route)}[/]";
                table.AddRow(Markup.Escape(r.Name + (r.Name == LeaderDatacenter ? " (leader)" : "")), route, Units.Count(s.Delivered),
                    r.LearnerCount == 0 ? "-" : Units.Count(r.MinReceived), Units.Duration(p50), Units.Duration(p99),
                    Units.Count(Lag(_lastIndex, s.Delivered)), Units.Bytes(s.BytesSent), Units.Bytes(direct),
                    direct > 0 ? ((double)s.BytesSent / direct).ToString("P1", CultureInfo.InvariantCulture) : "-",
                    s.Failovers > 0 ? $"[red]{s.Failovers}[/]" : "0");
            }
            var rows = new List<IRenderable> { table };
            lock (_events)
                foreach (var e in _events) rows.Add(new Markup("[bold]" + Markup.Escape(e) + "[/]"));
            rows.Add(new Markup("[grey]latency: publish to learner, last second; direct fan-out: one uncompressed copy per member and learner of the datacenter[/]"));
            return new Rows(rows);
        }

        private void PrintLines()
        {
            foreach (var (r, s) in Rows())
            {
                var (p50, p99) = _window.GetValueOrDefault(r.Name, (double.NaN, double.NaN));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"t={_clock.Elapsed.TotalSeconds:0}s dc={r.Name} route={s.Route.Replace(' ', ':')} acked={s.Delivered} learners_min={r.MinReceived} p50={Units.Duration(p50).Replace(" ", "")} p99={Units.Duration(p99).Replace(" ", "")} lag={Lag(_lastIndex, s.Delivered)} sent={s.BytesSent} direct={DirectCost(r, s.Delivered)} failovers={s.Failovers}"));
            }
        }

        private bool AllDelivered()
        {
            Observe();
            if (_leaderId is null || _commit < _last) return false;
            foreach (var (r, s) in Rows())
                if (s.Delivered < _last || (r.LearnerCount > 0 && (ulong)r.MinReceived < _last)) return false;
            return true;
        }

        /// <summary>Lets the tail arrive everywhere, bounded.</summary>
        public async Task<bool> SettleAsync(CancellationToken ct)
        {
            var settle = Stopwatch.StartNew();
            while (settle.Elapsed < TimeSpan.FromSeconds(15) && !AllDelivered() && !ct.IsCancellationRequested)
                await Task.Delay(20, ct);
            foreach (var r in regions) r.TakeWindow();
            return AllDelivered();
        }

        public void PrintSummary(bool ok)
        {
            long sent = 0, direct = 0, remoteSent = 0, remoteDirect = 0;
            foreach (var (r, s) in Rows())
            {
                long d = DirectCost(r, s.Delivered);
                sent += s.BytesSent;
                direct += d;
                if (r.Name != LeaderDatacenter) { remoteSent += s.BytesSent; remoteDirect += d; }
                string failure = r.Failure is null ? "" : " learner_failure=\"" + r.Failure + "\"";
                var (p50, p99) = r.TotalLatency();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"Summary dc={r.Name} route={s.Route.Replace(' ', ':')} acked={s.Delivered} learners={r.LearnerCount} learners_received={r.MinReceived} p50={Units.Duration(p50).Replace(" ", "")} p99={Units.Duration(p99).Replace(" ", "")} failovers={s.Failovers} bytes_sent={s.BytesSent} direct_fanout_bytes={d}{failure}"));
            }
            lock (_events)
                foreach (var e in _events) output.WriteLine("Summary event " + e);
            string share = remoteDirect > 0 ? string.Create(CultureInfo.InvariantCulture, $" ({(double)remoteSent / remoteDirect:P1})") : "";
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Summary: published {_published:N0}, committed {_commit:N0}; every datacenter and learner has every entry: {(ok ? "yes" : "no")}. Across region boundaries the leader sent {Units.Bytes(remoteSent)}; direct fan-out would have sent about {Units.Bytes(remoteDirect)}{share}."));
        }

        private static long Lag(ulong ahead, ulong behind) => ahead > behind ? (long)(ahead - behind) : 0;
    }
}
