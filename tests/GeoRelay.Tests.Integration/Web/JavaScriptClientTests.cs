using System.Diagnostics;
using System.Text;
using System.Text.Json;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Web;

/// <summary>
/// The JavaScript client the node serves at /georelay.js, run by Node.js (the same WebSocket and fetch a browser has):
/// every entry reaches the callback once and in order, across a kill and restart of the node it reads from. A real
/// browser (Playwright) is the next step of issue 24.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class JavaScriptClientTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private const string Runner = """
        import { subscribe } from "./georelay.mjs";
        const [url, from] = process.argv.slice(2);
        subscribe(url, { from: Number(from), backoffInitialMs: 100, backoffMaxMs: 1000,
          onStatus: s => console.log("STATUS " + s),
          onError: e => { console.log("ERROR " + JSON.stringify(e)); process.exit(3); } },
          e => console.log("ENTRY " + JSON.stringify(e)));
        """;

    [Test]
    public async Task TheJavaScriptClientGetsEveryEntryOnceAndInOrderAcrossANodeRestart()
    {
        var flags = NodeFlags() ?? throw new IgnoreException("no Node.js with WebSocket (node 22, or node 20.10+ with --experimental-websocket) on PATH");
        using var cluster = new ClusterFixture("web.yaml");
        await cluster.StartAllAsync();
        string web = "http://" + cluster.Topology.GetNode("m1").Web!.Value;

        using (var http = new HttpClient())
            File.WriteAllText(Path.Combine(cluster.Directory, "georelay.mjs"), await http.GetStringAsync(web + "/georelay.js"));
        File.WriteAllText(Path.Combine(cluster.Directory, "runner.mjs"), Runner);
        await PublishAsync(cluster, 1, 5);

        var entries = new List<JsonElement>();
        var output = new StringBuilder();
        var arrived = new SemaphoreSlim(0); // not disposed: node may still print after the test ends
        using var node = Process.Start(new ProcessStartInfo("node", $"{flags} runner.mjs {web} 1")
        {
            WorkingDirectory = cluster.Directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        node.OutputDataReceived += (_, line) =>
        {
            if (line.Data is null) return;
            lock (entries)
            {
                output.AppendLine(line.Data);
                if (!line.Data.StartsWith("ENTRY ", StringComparison.Ordinal)) return;
                entries.Add(JsonDocument.Parse(line.Data[6..]).RootElement.Clone());
            }
            arrived.Release();
        };
        node.ErrorDataReceived += (_, line) => { lock (entries) output.AppendLine(line.Data); };
        node.BeginOutputReadLine();
        node.BeginErrorReadLine();
        try
        {
            await WaitForEntriesAsync(entries, arrived, output, 5);
            // The node goes away without a word, and comes back on the same data: the client reconnects by itself.
            cluster.Processes["m1"].Kill();
            var m1 = cluster.StartNode("m1");
            await m1.WaitForLineAsync("Web endpoint on http://", Patience);
            await PublishAsync(cluster, 6, 10);
            await WaitForEntriesAsync(entries, arrived, output, 10);

            lock (entries)
            {
                Assert.That(entries.Select(e => e.GetProperty("payload").GetString()), Is.EqualTo(Enumerable.Range(1, 10).Select(i => $"entry {i}")), output.ToString());
                Assert.That(entries.Select(e => e.GetProperty("index").GetUInt64()), Is.Ordered.Ascending.And.Unique);
            }
        }
        finally
        {
            if (!node.HasExited) node.Kill();
            await node.WaitForExitAsync();
        }
    }

    private static Task PublishAsync(ClusterFixture cluster, int first, int last) =>
        WebClusterPublisher.PublishAsync(cluster, Enumerable.Range(first, last - first + 1).Select(i => (Encoding.UTF8.GetBytes($"k/{i}"), Encoding.UTF8.GetBytes($"entry {i}"))));

    /// <summary>Waits, woken by each entry that arrives, until <paramref name="count"/> are in, or fails after <see cref="Patience"/>.</summary>
    private static async Task WaitForEntriesAsync(List<JsonElement> entries, SemaphoreSlim arrived, StringBuilder output, int count)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            lock (entries)
                if (entries.Count >= count) return;
            var left = Patience - deadline.Elapsed;
            if (left <= TimeSpan.Zero || !await arrived.WaitAsync(left))
                lock (entries) Assert.Fail($"the JavaScript client got {entries.Count} of {count} entries; its output:\n{output}");
        }
    }

    /// <summary>The flags under which `node` has a WebSocket, or null without one.</summary>
    private static string? NodeFlags()
    {
        foreach (var flags in new[] { "", "--experimental-websocket" })
        {
            try
            {
                using var probe = Process.Start(new ProcessStartInfo("node", $"{flags} -e \"process.exit(typeof WebSocket === 'function' ? 0 : 1)\"")
                {
                    RedirectStandardError = true,
                    RedirectStandardOutput = true,
                })!;
                probe.WaitForExit(10_000);
                if (probe.HasExited && probe.ExitCode == 0) return flags;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                return null; // no node on PATH
            }
        }
        return null;
    }
}
