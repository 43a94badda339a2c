using Microsoft.Playwright;
using NUnit.Framework;
using static Microsoft.Playwright.Assertions;

namespace GeoRelay.Tests.Integration.Browser;

/// <summary>The console at <c>/</c> of a node's admin endpoint, in chromium: a relay's failover shows as a route change and an event.</summary>
[TestFixture]
[NonParallelizable]
public sealed class ConsoleTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Test]
    public async Task KillingTheActiveRelayOfADatacenterMovesItsRouteToTheOtherRelayOnThePage()
    {
        using var cluster = new ClusterFixture("browser.yaml");
        await cluster.StartAllAsync();
        var (playwright, browser) = await Chromium.LaunchAsync();
        using (playwright)
        await using (browser)
        {
            var page = await browser.NewPageAsync();
            // A member's console: the route is the leader's, so this view comes from asking the peers' /status.
            await page.GotoAsync($"http://{cluster.Topology.GetNode("h1").Admin!.Value}/");
            var route = page.Locator("#datacenters tr[data-dc='far'] td.route");
            await Expect(route).ToHaveTextAsync("relay p1", new() { Timeout = Ms(Patience) });
            await Expect(page.Locator("#nodes tr[data-node='p1'] td.state")).ToHaveTextAsync("running", new() { Timeout = Ms(Patience) });

            cluster.Processes["p1"].Kill();

            await Expect(route).ToHaveTextAsync("relay p2", new() { Timeout = Ms(Patience) });
            await Expect(page.Locator("#events li[data-kind='route']")).ToContainTextAsync("far: route relay p1 -> relay p2", new() { Timeout = Ms(Patience) });
            await Expect(page.Locator("#nodes tr[data-node='p1'] td.state")).ToHaveTextAsync("down", new() { Timeout = Ms(Patience) });
            await Expect(page.Locator("#events li[data-kind='down']")).ToContainTextAsync("p1 (far) went down", new() { Timeout = Ms(Patience) });
        }
    }

    private static float Ms(TimeSpan t) => (float)t.TotalMilliseconds;
}
