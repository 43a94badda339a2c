using Microsoft.Playwright;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Browser;

/// <summary>Debian's chromium (<c>apt-get install chromium</c>, as .ci/run does), headless, driven by Playwright; no downloaded browser.</summary>
internal static class Chromium
{
    public const string Path = "/usr/bin/chromium";

    /// <summary>Playwright and a browser; the test fails, saying why, where chromium is not installed (.ci/run installs it).</summary>
    public static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchAsync()
    {
        if (!File.Exists(Path)) Assert.Fail($"no {Path}: apt-get install chromium (.ci/run does)");
        var playwright = await Playwright.CreateAsync();
        try
        {
            // --no-sandbox: the tests run as root, where chromium's sandbox refuses to start.
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = Path, Headless = true, Args = ["--no-sandbox"] });
            return (playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }
}
