using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using GeoRelay.Cli.Demo;
using GeoRelay.TestUtilities;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Admin;

/// <summary>
/// The admin endpoint of a node with TLS and token keys, as real processes: HTTPS with the node's certificate, bound to
/// loopback for a bare port, /healthz open, and every other route needing a token with the admin scope.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class AdminAuthTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private ClusterFixture _cluster = null!;
    private int _port;
    private string _ca = null!;
    private AdminHttp _admin = null!;
    private string _adminToken = null!;
    private string _learnToken = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _cluster = new ClusterFixture("two-nodes.yaml", yaml => yaml.Replace("insecure: true\n",
            "tls: { ca: certs/ca.crt, certificates: certs }\nauth: { key-file: certs/token.key, revoked-file: revoked, publish: false }\n"));
        string certs = Path.Combine(_cluster.Directory, "certs");
        foreach (var args in new[] { $"dev-certs --config \"{_cluster.ConfigPath}\" --out \"{certs}\"", $"token --new-key \"{Path.Combine(certs, "token.key")}\"" })
        {
            var run = _cluster.Run("setup", args);
            Assert.That(await run.WaitForExitAsync(Patience), Is.EqualTo(0), run.Output);
        }
        File.WriteAllText(Path.Combine(_cluster.Directory, "revoked"), "# nothing revoked yet\n");
        var ports = LocalCluster.FreeLoopbackPorts(2);
        _port = ports[0];
        // A bare port: the admin endpoint binds 127.0.0.1 unless a host is given.
        _cluster.ExtraArguments["m1"] = $"--admin {_port}";
        _cluster.ExtraArguments["leader"] = $"--admin {ports[1]}";
        await _cluster.StartAllAsync();
        _ca = Path.Combine(certs, "ca.crt");
        _admin = new AdminHttp($"127.0.0.1:{_port}", _ca);
        (_adminToken, _) = await AdminHttp.MintAsync(_cluster, "ops", "admin", Patience);
        (_learnToken, _) = await AdminHttp.MintAsync(_cluster, "reader", "learn", Patience);
    }

    [OneTimeTearDown]
    public void Stop()
    {
        _admin?.Dispose();
        _cluster?.Dispose();
    }

    private static JsonElement Error(string body) => JsonDocument.Parse(body).RootElement;

    [Test]
    public async Task HealthzIsOpenAndEveryOtherRouteNeedsATokenWithTheAdminScope()
    {
        Assert.That(Error(await _admin.GetAsync("/healthz")).GetProperty("status").GetString(), Is.EqualTo("running"), "/healthz needs no token");

        foreach (var (method, path) in new[] { (HttpMethod.Get, "/status"), (HttpMethod.Get, "/metrics"), (HttpMethod.Get, "/learners"),
                     (HttpMethod.Get, "/blacklist"), (HttpMethod.Post, "/learners/1/disconnect"), (HttpMethod.Delete, "/blacklist/127.0.0.2"),
                     (HttpMethod.Get, "/config"), (HttpMethod.Post, "/config/propose"), (HttpMethod.Get, "/config/progress/m1") })
        {
            var (status, body, headers) = await _admin.SendAsync(method, path);
            Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized), $"{method} {path} without a token: {body}");
            Assert.That(Error(body).GetProperty("error").GetString(), Is.EqualTo("missing-token"), body);
            Assert.That(Error(body).GetProperty("message").GetString(), Does.Contain("Authorization: Bearer <token>").And.Contain("--scope admin"));
            Assert.That(headers.WwwAuthenticate.ToString(), Does.StartWith("Bearer"));
        }

        var (forged, forgedBody, _) = await _admin.SendAsync(HttpMethod.Get, "/status", "not-a-token");
        Assert.That((forged, Error(forgedBody).GetProperty("error").GetString()), Is.EqualTo((HttpStatusCode.Unauthorized, "invalid-token")), forgedBody);
        Assert.That(Error(forgedBody).GetProperty("message").GetString(), Does.Contain("not a GeoRelay token"));

        var (learnOnly, learnBody, _) = await _admin.SendAsync(HttpMethod.Get, "/metrics", _learnToken);
        Assert.That(learnOnly, Is.EqualTo(HttpStatusCode.Forbidden), learnBody);
        Assert.That(Error(learnBody).GetProperty("error").GetString(), Is.EqualTo("forbidden"));
        Assert.That(Error(learnBody).GetProperty("message").GetString(), Does.Contain("'reader' has the scopes learn, not admin"));

        var report = await _admin.StatusAsync(_adminToken);
        Assert.That(report.GetProperty("node").GetString(), Is.EqualTo("m1"));
        Assert.That(report.GetProperty("refusals").GetProperty("Unauthorized").GetInt64(), Is.GreaterThanOrEqualTo(0));
        string metrics = await _admin.GetAsync("/metrics", _adminToken);
        foreach (var reason in new[] { "FrameTimeout", "TokenRevoked", "Blacklisted", "AdminDisconnect" })
            Assert.That(AdminHttp.Sample(metrics, "georelay_refusals_total", $"reason=\"{reason}\""), Is.EqualTo(0), $"{reason} exported:\n{metrics}");

        Assert.That(_cluster.Processes["m1"].Output, Does.Contain("Admin request GET /status from 127.0.0.1 refused with 401"), "refusals are logged");
        Assert.That(_cluster.Processes["m1"].Output, Does.Not.Contain(_adminToken).And.Not.Contain(_learnToken), "tokens are never logged");
    }

    [Test]
    public async Task AdminServesHttpsWithTheNodesCertificateAndABarePortBindsLoopbackOnly()
    {
        var m1 = _cluster.Processes["m1"];
        await m1.WaitForLineAsync($@"Admin endpoint on https://127\.0\.0\.1:{_port} .*a token with the admin scope is required", Patience);

        using (var plain = new AdminHttp($"127.0.0.1:{_port}"))
            Assert.ThrowsAsync<HttpRequestException>(() => plain.SendAsync(HttpMethod.Get, "/healthz"), "plain HTTP to the HTTPS endpoint");

        using (var tls = new System.Net.Security.SslStream(new NetworkStream(await ConnectAsync(IPAddress.Loopback), ownsSocket: true)))
        {
            await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
            {
                TargetHost = "127.0.0.1",
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            });
            Assert.That(tls.RemoteCertificate?.Subject, Is.EqualTo("CN=m1"), "the node's own certificate");
        }

        // Linux routes all of 127/8 to lo: an endpoint on every interface would answer at 127.0.0.2 too.
        var refused = Assert.ThrowsAsync<SocketException>(() => ConnectAsync(IPAddress.Parse("127.0.0.2")));
        Assert.That(refused!.SocketErrorCode, Is.EqualTo(SocketError.ConnectionRefused));
    }

    private async Task<Socket> ConnectAsync(IPAddress address)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(address, _port));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    [Test]
    public async Task AnAdminTokenRevokedOnSighupIsRefused()
    {
        var (token, id) = await AdminHttp.MintAsync(_cluster, "ops-leaving", "admin", Patience);
        Assert.That((await _admin.StatusAsync(token)).GetProperty("node").GetString(), Is.EqualTo("m1"));

        File.AppendAllText(Path.Combine(_cluster.Directory, "revoked"), $"token {id}\n");
        var m1 = _cluster.Processes["m1"];
        m1.HangUp();
        await m1.WaitForLineAsync(@"Reloaded token keys: .*revoked: 0 key\(s\), 1 token\(s\)", Patience);

        var (status, body, _) = await _admin.SendAsync(HttpMethod.Get, "/status", token);
        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized), body);
        Assert.That(Error(body).GetProperty("message").GetString(), Does.Contain($"token {id} for 'ops-leaving' is revoked"));
        Assert.That((await _admin.StatusAsync(_adminToken)).GetProperty("node").GetString(), Is.EqualTo("m1"), "other admin tokens still work");
    }

    [Test]
    public async Task StatusCommandSendsTheTokenOverHttpsAndSaysWhatIsMissing()
    {
        string tokenFile = Path.Combine(_cluster.Directory, "admin.token");
        File.WriteAllText(tokenFile, _adminToken + "\n");

        var ok = _cluster.Run("status", $"status --admin {_port} --ca \"{_ca}\" --token-file \"{tokenFile}\"");
        Assert.That(await ok.WaitForExitAsync(Patience), Is.EqualTo(0), ok.Output);
        Assert.That(ok.Output, Does.Contain("m1: member in home"));

        var noToken = _cluster.Run("status", $"status --admin {_port} --ca \"{_ca}\"");
        Assert.That(await noToken.WaitForExitAsync(Patience), Is.EqualTo(1), noToken.Output);
        Assert.That(noToken.Output, Does.Contain("answered 401").And.Contain("--token-file FILE, or GEORELAY_TOKEN"));

        var noCa = _cluster.Run("status", $"status --admin {_port} --token-file \"{tokenFile}\"");
        Assert.That(await noCa.WaitForExitAsync(Patience), Is.EqualTo(1), noCa.Output);
        Assert.That(noCa.Output, Does.Contain("cannot read http://127.0.0.1:").And.Contain("pass --ca"));
    }

    [Test]
    public async Task ANodeWithTlsButNoTokenKeysRefusesAdminRoutesNamingTheMissingConfig()
    {
        using var cluster = new ClusterFixture("two-nodes.yaml", yaml => yaml.Replace("insecure: true\n", "tls: { ca: certs/ca.crt, certificates: certs }\n"));
        string certs = Path.Combine(cluster.Directory, "certs");
        var devCerts = cluster.Run("dev-certs", $"dev-certs --config \"{cluster.ConfigPath}\" --out \"{certs}\"");
        Assert.That(await devCerts.WaitForExitAsync(Patience), Is.EqualTo(0), devCerts.Output);
        int port = LocalCluster.FreeLoopbackPorts(1)[0];
        cluster.ExtraArguments["m1"] = $"--admin {port}";
        var m1 = cluster.StartNode("m1");
        await m1.WaitForLineAsync("Admin endpoint on https://.*refusing every route but /healthz: this node has TLS but no token keys", Patience);

        using var admin = new AdminHttp($"127.0.0.1:{port}", Path.Combine(certs, "ca.crt"));
        Assert.That(await admin.GetAsync("/healthz"), Does.Contain("\"running\""));
        var (status, body, _) = await admin.SendAsync(HttpMethod.Get, "/status", _adminToken);
        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized), body);
        Assert.That(Error(body).GetProperty("error").GetString(), Is.EqualTo("no-token-keys"));
        Assert.That(Error(body).GetProperty("message").GetString(), Does.Contain("add `auth: { key-file: FILE }` to the topology"));
    }

    [Test]
    public async Task PrometheusScrapesTheEndpointWithTheDeploySamplesTokenFileOverHttps()
    {
        string dir = Path.Combine(_cluster.Directory, "prometheus");
        Directory.CreateDirectory(dir);
        string tokenFile = Path.Combine(dir, "georelay-admin.token");
        File.WriteAllText(tokenFile, _adminToken + "\n");
        string deploy = Path.Combine(AppContext.BaseDirectory, "deploy", "prometheus");
        string sample = File.ReadAllText(Path.Combine(deploy, "prometheus.yml"));
        string config = Regex.Replace(sample
                .Replace("/etc/prometheus/georelay-admin.token", tokenFile)
                .Replace("/etc/georelay/certs/ca.crt", _ca)
                .Replace("scrape_interval: 15s", "scrape_interval: 1s")
                .Replace("- georelay-alerts.yaml", "- " + Path.Combine(deploy, "georelay-alerts.yaml")),
            @"- targets: \[.*\]", $"- targets: [\"127.0.0.1:{_port}\"]");
        Assert.That(config, Does.Contain(tokenFile).And.Contain(_ca).And.Contain($"127.0.0.1:{_port}").And.Contain("scrape_interval: 1s"),
            "the sample still has the lines this test replaces");
        File.WriteAllText(Path.Combine(dir, "prometheus.yml"), config);

        int web = LocalCluster.FreeLoopbackPorts(1)[0];
        var info = new ProcessStartInfo("prometheus")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { $"--config.file={Path.Combine(dir, "prometheus.yml")}", $"--storage.tsdb.path={Path.Combine(dir, "data")}", $"--web.listen-address=127.0.0.1:{web}" })
            info.ArgumentList.Add(a);
        var log = new StringBuilder();
        using var prometheus = Process.Start(info) ?? throw new InvalidOperationException("could not start prometheus (Debian package prometheus)");
        prometheus.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        prometheus.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        prometheus.BeginOutputReadLine();
        prometheus.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            async Task<string> TargetAsync()
            {
                try
                {
                    var targets = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{web}/api/v1/targets")).RootElement;
                    var active = targets.GetProperty("data").GetProperty("activeTargets");
                    return active.GetArrayLength() == 0 ? "no target yet"
                        : $"{active[0].GetProperty("health").GetString()} {active[0].GetProperty("lastError").GetString()}";
                }
                catch (HttpRequestException e)
                {
                    if (prometheus.HasExited) Assert.Fail($"prometheus exited with {prometheus.ExitCode}:\n{log}");
                    return "prometheus not answering yet: " + e.Message;
                }
            }
            await Poll.UntilAsync(TargetAsync, health => health.StartsWith("up", StringComparison.Ordinal), "Prometheus scraping m1's admin endpoint", Patience);
            var query = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{web}/api/v1/query?query=georelay_refusals_total%7Breason%3D%22FrameTimeout%22%7D")).RootElement;
            var result = query.GetProperty("data").GetProperty("result");
            Assert.That(result.GetArrayLength(), Is.EqualTo(1), query.ToString());
            Assert.That(result[0].GetProperty("metric").GetProperty("node").GetString(), Is.EqualTo("m1"));
        }
        finally
        {
            if (!prometheus.HasExited) prometheus.Kill();
            await prometheus.WaitForExitAsync();
        }
    }

    [Test]
    public async Task TheConsoleNeedsAnAdminTokenWhichItsRoutesAloneTakeInTheQuery()
    {
        Assert.That((await _admin.SendAsync(HttpMethod.Get, "/")).Status, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That((await _admin.SendAsync(HttpMethod.Get, "/console/events")).Status, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That((await _admin.SendAsync(HttpMethod.Get, "/?token=" + Uri.EscapeDataString(_learnToken))).Status, Is.EqualTo(HttpStatusCode.Forbidden));
        // Only the console's routes take the query: the others still need the header.
        Assert.That((await _admin.SendAsync(HttpMethod.Get, "/status?token=" + Uri.EscapeDataString(_adminToken))).Status, Is.EqualTo(HttpStatusCode.Unauthorized));

        var (status, page, headers) = await _admin.SendAsync(HttpMethod.Get, "/?token=" + Uri.EscapeDataString(_adminToken));
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), page);
        Assert.That(page, Does.Contain("/console/events"));
        Assert.That(headers.GetValues("Referrer-Policy"), Is.EqualTo(new[] { "no-referrer" }));

        using var http = new HttpClient(new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true } });
        using var response = await http.GetAsync($"https://127.0.0.1:{_port}/console/events?token={Uri.EscapeDataString(_adminToken)}", HttpCompletionOption.ResponseHeadersRead);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        string? line = await reader.ReadLineAsync();
        Assert.That(line, Does.StartWith("data: "));
        var snapshot = JsonDocument.Parse(line![6..]).RootElement;
        Assert.That(snapshot.GetProperty("node").GetString(), Is.EqualTo("m1"));
        var m1 = snapshot.GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("id").GetString() == "m1");
        Assert.That(m1.GetProperty("state").GetString(), Is.EqualTo("running"));
    }
}
