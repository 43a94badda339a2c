using System.Diagnostics;
using GeoRelay.Leader;
using GeoRelay.Cli.Demo;
using GeoRelay.Server.Hosting;
using GeoRelay.Topology;
using Microsoft.Extensions.Logging;
using GeoRelay.TestUtilities;

namespace GeoRelay.Bench.Datapath;

/// <summary>
/// The data path with every relay and member as a real `georelay` process and only the leader in this
/// process, so this process's CPU time is the leader's own (plus the publishing loop).
/// </summary>
internal sealed class FollowerProcesses : IAsyncDisposable
{
    private readonly string _directory;
    private readonly List<GeoRelayProcess> _followers = new();

    public LeaderNode Leader { get; }
    public TopologyConfig Topology { get; }
    /// <summary>Where every node's data directory is (removed on dispose).</summary>
    public string Directory => _directory;
    /// <summary>Relay and member processes.</summary>
    public int Count => _followers.Count;

    private FollowerProcesses(string directory, TopologyConfig topology, LeaderNode leader, List<GeoRelayProcess> followers)
    {
        _directory = directory;
        Topology = topology;
        Leader = leader;
        _followers = followers;
    }

    /// <param name="yaml">The topology file's text; its ports are replaced by free ones.</param>
    /// <param name="startTimeout">How long each process may take to listen; default 90 s (dozens of processes starting at once on two cores take longer).</param>
    public static async Task<FollowerProcesses> StartAsync(string yaml, LeaderOptions options, ILoggerFactory loggers, TimeSpan? startTimeout = null)
    {
        var directory = Path.Combine(Path.GetTempPath(), "georelay-datapath-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(directory);
        var config = Path.Combine(directory, "topology.yaml");
        File.WriteAllText(config, LocalCluster.WithFreePorts(yaml));
        var topology = TopologyLoader.LoadFile(config).GetConfigOrThrow();
        var followers = new List<GeoRelayProcess>();
        var listening = new List<Task>();
        foreach (var dc in topology.Datacenters)
        {
            foreach (var id in dc.Members.Concat(dc.Relays))
            {
                string command = topology.GetNode(id).Role == NodeRole.Relay ? "relay" : "member";
                var process = new GeoRelayProcess(id, $"{command} --config \"{config}\" --node {id} --data \"{Path.Combine(directory, id)}\"");
                followers.Add(process);
                listening.Add(process.WaitForLineAsync("Listening for Peer", startTimeout ?? TimeSpan.FromSeconds(90)));
            }
        }
        try
        {
            await Task.WhenAll(listening);
        }
        catch
        {
            foreach (var f in followers) f.Dispose();
            throw;
        }
        var leader = new LeaderNode(topology, 1, Path.Combine(directory, topology.LeaderId), options, loggers);
        return new FollowerProcesses(directory, topology, leader, followers);
    }

    /// <summary>CPU time the follower processes have used so far, all together, or only the relays' (<paramref name="relaysOnly"/>).</summary>
    public TimeSpan FollowersCpu(bool relaysOnly = false)
    {
        var total = TimeSpan.Zero;
        foreach (var f in _followers)
        {
            if (relaysOnly && Topology.GetNode(f.Name).Role != NodeRole.Relay) continue;
            using var p = Process.GetProcessById(f.Id);
            total += p.TotalProcessorTime;
        }
        return total;
    }

    public async ValueTask DisposeAsync()
    {
        await Leader.DisposeAsync();
        foreach (var f in _followers)
        {
            try { await f.TerminateAsync(TimeSpan.FromSeconds(30)); }
            catch (TimeoutException) { } // Dispose kills it
            f.Dispose();
        }
        try { System.IO.Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
