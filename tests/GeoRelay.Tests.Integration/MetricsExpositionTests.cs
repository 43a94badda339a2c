using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using GeoRelay.Cli.Demo;
using GeoRelay.Topology;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration;

/// <summary>
/// Each role's <c>/metrics</c>, from real daemons, checked by Prometheus' own <c>promtool check metrics</c> and
/// against the names and labels docs/operations.md promises.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class MetricsExpositionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    // "name type" as in the `# TYPE` line, per role.
    private static readonly string[] EveryRole =
    [
        "georelay_epoch gauge", "georelay_index_last gauge", "georelay_index_durable gauge", "georelay_lag gauge",
        "georelay_peer_sent_bytes_total counter", "georelay_peer_received_bytes_total counter",
        "georelay_peer_connections gauge", "georelay_peer_up gauge",
    ];

    private static readonly string[] Leader =
    [
        "georelay_entries_total counter", "georelay_index_commit gauge", "georelay_dc_batches_total counter",
        "georelay_dc_sent_bytes_total counter", "georelay_dc_entry_sent_bytes_total counter", "georelay_dc_compression_ratio gauge",
        "georelay_dc_acked gauge", "georelay_dc_lag gauge", "georelay_dc_inflight_bytes gauge", "georelay_dc_failovers_total counter",
        "georelay_dc_direct_time_seconds_total counter", "georelay_dc_direct gauge", "georelay_dc_ack_latency_seconds histogram",
    ];

    private static readonly string[] Learners =
        ["georelay_learners_connected gauge", "georelay_learners_slow_consumer_cuts_total counter", "georelay_learners_frames_total counter"];

    private static readonly string[] Relay = ["georelay_relay_batches_total counter", "georelay_index_retained gauge", .. Learners];

    private static readonly string[] Member = ["georelay_index_commit gauge", .. Learners];

    [Test]
    public async Task EveryRolesMetricsPassPromtoolWithTheDocumentedNamesAndNodeLabels()
    {
        string promtool = FindPromtool();
        using var cluster = new ClusterFixture("learners.yaml");
        var ports = new Queue<int>(LocalCluster.FreeLoopbackPorts(cluster.Topology.Nodes.Count));
        var admin = new Dictionary<string, string>();
        foreach (var id in cluster.Topology.Nodes.Keys)
        {
            admin[id] = $"127.0.0.1:{ports.Dequeue()}";
            cluster.ExtraArguments[id] = $"--admin {admin[id]}";
        }
        await cluster.StartAllAsync();

        // Committed needs both members (majority of two), so both datacenters have acked: the latency histogram has samples.
        var lines = new StringBuilder();
        for (int i = 0; i < 500; i++) lines.Append(CultureInfo.InvariantCulture, $"{{\"metric\":{i}}}\n");
        var publish = cluster.Run("publish", $"publish --leader {cluster.Topology.Leader.Publish} --wait committed --exactly-once false", lines.ToString());
        Assert.That(await publish.WaitForExitAsync(Patience), Is.EqualTo(0), publish.Output);

        var exported = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (id, node) in cluster.Topology.Nodes)
        {
            using var response = await Http.GetAsync($"http://{admin[id]}/metrics");
            response.EnsureSuccessStatusCode();
            Assert.That(response.Content.Headers.ContentType?.ToString(), Does.StartWith("text/plain").And.Contain("version=0.0.4"), id);
            string text = await response.Content.ReadAsStringAsync();

            var (exit, verdict) = await CheckMetricsAsync(promtool, text);
            Assert.That(exit, Is.EqualTo(0), $"promtool check metrics on {id}'s /metrics said:\n{verdict}\n--- exposition:\n{text}");
            Assert.That(verdict, Is.Empty, $"promtool lint on {id}");

            string[] expected = node.Role switch
            {
                NodeRole.Leader => [.. EveryRole, .. Leader],
                NodeRole.Relay => [.. EveryRole, .. Relay],
                _ => [.. EveryRole, .. Member],
            };
            foreach (var family in expected)
                Assert.That(text, Does.Contain($"# TYPE {family}\n"), $"{id} ({node.Role})");

            foreach (var family in text.Split('\n').Where(l => l.StartsWith("# TYPE ", StringComparison.Ordinal)))
                exported.Add(family.Split(' ')[2]);

            string role = node.Role.ToString().ToLowerInvariant();
            foreach (var sample in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (sample.StartsWith('#')) continue;
                Assert.That(sample, Does.Contain($"node=\"{id}\"").And.Contain($"role=\"{role}\"").And.Contain($"dc=\"{node.Datacenter}\""),
                    "every series carries the node's labels");
            }
        }

        // The alert rules and the dashboard in deploy/ query only what the daemons export.
        foreach (var file in new[] { "deploy/prometheus/georelay-alerts.yaml", "deploy/grafana/georelay.json" })
        {
            var queried = System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, file)), @"\bgeorelay_[a-z_]+")
                .Select(m => System.Text.RegularExpressions.Regex.Replace(m.Value, "_(bucket|sum|count)$", "")).Distinct().ToList();
            Assert.That(queried, Is.Not.Empty, file);
            Assert.That(queried.Where(name => !exported.Contains(name)), Is.Empty, $"{file} queries metrics no daemon exports");
        }

        // A Prometheus server asks for OpenMetrics first, and gets it.
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{admin[cluster.Topology.LeaderId]}/metrics");
        request.Headers.Accept.Add(MediaTypeWithQualityHeaderValue.Parse("application/openmetrics-text;version=1.0.0"));
        request.Headers.Accept.Add(MediaTypeWithQualityHeaderValue.Parse("text/plain;version=0.0.4;q=0.5"));
        using var openMetrics = await Http.SendAsync(request);
        Assert.That(openMetrics.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/openmetrics-text"));
        string om = await openMetrics.Content.ReadAsStringAsync();
        Assert.That(om, Does.Contain("\ngeorelay_entries_total{").And.EndWith("# EOF\n"));
    }

    /// <summary>promtool from the Debian package `prometheus`; CI installs it, so its absence is a failure, not a skip.</summary>
    private static string FindPromtool()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.Combine(dir, "promtool");
            if (File.Exists(path)) return path;
        }
        Assert.Fail("promtool is not on PATH. It comes with the Debian package `prometheus`: "
            + "apt-get install -y --no-install-recommends prometheus (.ci/run installs it).");
        return "";
    }

    private static async Task<(int ExitCode, string Output)> CheckMetricsAsync(string promtool, string exposition)
    {
        var info = new ProcessStartInfo(promtool, "check metrics")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {promtool}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(exposition);
        process.StandardInput.Close();
        using var deadline = new CancellationTokenSource(Patience);
        await process.WaitForExitAsync(deadline.Token);
        return (process.ExitCode, (await stdout + await stderr).Trim());
    }
}
