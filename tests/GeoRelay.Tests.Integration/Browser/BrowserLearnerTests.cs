using System.Text;
using System.Text.Json;
using GeoRelay.Tests.Integration.Admin;
using GeoRelay.Tests.Integration.Web;
using Microsoft.Playwright;
using NUnit.Framework;
using static Microsoft.Playwright.Assertions;

namespace GeoRelay.Tests.Integration.Browser;

/// <summary>
/// A web page in chromium that imports the JavaScript client from a node (<c>/georelay.js</c>) and subscribes to two relays'
/// web addresses: every entry arrives once and in order, across a kill of the relay it reads from.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class BrowserLearnerTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    // The page lists each entry as "index key payload"; the test reads the list, never the client's internals.
    private const string Page = """
        <!doctype html>
        <ol id="entries"></ol>
        <div id="status"></div>
        <script type="module">
          const [first, second] = JSON.parse(new URLSearchParams(location.search).get("urls"));
          const { subscribe } = await import(first + "/georelay.js");
          subscribe([first, second], { from: 1, backoffInitialMs: 100, backoffMaxMs: 1000,
              onStatus: s => document.getElementById("status").textContent = s,
              onError: e => document.getElementById("status").textContent = "error " + e.error + ": " + e.message },
            e => {
              const li = document.createElement("li");
              li.textContent = e.index + " " + e.key + " " + e.payload;
              document.getElementById("entries").append(li);
            });
        </script>
        """;

    [Test]
    public async Task APageGetsEveryEntryOnceAndInOrderAcrossAKillOfTheRelayItReadsFrom()
    {
        using var cluster = new ClusterFixture("browser.yaml");
        await cluster.StartAllAsync();
        string p1 = "http://" + cluster.Topology.GetNode("p1").Web!.Value, p2 = "http://" + cluster.Topology.GetNode("p2").Web!.Value;
        await PublishAsync(cluster, 1, 20);

        var (playwright, browser) = await Chromium.LaunchAsync();
        using (playwright)
        await using (browser)
        {
            var page = await browser.NewPageAsync();
            var log = new List<string>();
            page.Console += (_, m) => { lock (log) log.Add(m.Text); };
            page.PageError += (_, e) => { lock (log) log.Add(e); };
            // The page comes from an origin of its own, as a real application's would: a web server on loopback (chromium
            // keeps pages from other address spaces off loopback addresses).
            string app = $"http://127.0.0.1:{GeoRelay.Cli.Demo.LocalCluster.FreeLoopbackPorts(1)[0]}/";
            using var server = ServePage(app);
            await page.GotoAsync(app + "?urls=" + Uri.EscapeDataString(JsonSerializer.Serialize(new[] { p1, p2 })));
            var entries = page.Locator("#entries li");
            await ExpectCountAsync(entries, 20, log);

            // The client starts on the first address: p1 serves it (its web endpoint subscribes to p1's learner port).
            using (var admin = new AdminHttp(cluster.Topology.GetNode("p1").Admin!.Value.ToString()))
                Assert.That((await admin.StatusAsync()).GetProperty("learners").GetProperty("connected").GetInt32(), Is.GreaterThanOrEqualTo(1));
            cluster.Processes["p1"].Kill();
            await PublishAsync(cluster, 21, 40);
            await ExpectCountAsync(entries, 40, log);

            var got = await entries.AllTextContentsAsync();
            var expected = Enumerable.Range(1, 40).Select(i => $"k/{i} entry {i}").ToList();
            Assert.That(got.Select(line => line[(line.IndexOf(' ') + 1)..]), Is.EqualTo(expected), "entries in publish order, none missing, none twice");
            Assert.That(got.Select(line => ulong.Parse(line[..line.IndexOf(' ')], System.Globalization.CultureInfo.InvariantCulture)),
                Is.Ordered.Ascending.And.Unique);
        }
    }

    /// <summary>Answers every request at <paramref name="prefix"/> with <see cref="Page"/> until disposed.</summary>
    private static System.Net.HttpListener ServePage(string prefix)
    {
        var listener = new System.Net.HttpListener();
        listener.Prefixes.Add(prefix);
        listener.Start();
        var body = Encoding.UTF8.GetBytes(Page);
        _ = Task.Run(async () =>
        {
            while (listener.IsListening)
            {
                System.Net.HttpListenerContext context;
                try { context = await listener.GetContextAsync(); }
                catch (Exception e) when (e is System.Net.HttpListenerException or ObjectDisposedException) { return; }
                context.Response.ContentType = "text/html; charset=utf-8";
                await context.Response.OutputStream.WriteAsync(body);
                context.Response.Close();
            }
        });
        return listener;
    }

    /// <summary>Waits for the page to list <paramref name="count"/> entries; on failure says what the page logged.</summary>
    private static async Task ExpectCountAsync(ILocator entries, int count, List<string> log)
    {
        try
        {
            await Expect(entries).ToHaveCountAsync(count, new() { Timeout = (float)Patience.TotalMilliseconds });
        }
        catch (PlaywrightException e)
        {
            lock (log) Assert.Fail($"{e.Message}\nthe page logged:\n{string.Join("\n", log)}");
        }
    }

    private static Task PublishAsync(ClusterFixture cluster, int first, int last) =>
        WebClusterPublisher.PublishAsync(cluster, Enumerable.Range(first, last - first + 1).Select(i => (Encoding.UTF8.GetBytes($"k/{i}"), Encoding.UTF8.GetBytes($"entry {i}"))));
}
