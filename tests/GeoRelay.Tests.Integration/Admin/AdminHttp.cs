using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using GeoRelay.Transport.Security;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Admin;

/// <summary>One node's admin endpoint as a client sees it: HTTPS against the cluster CA when given one, a bearer token per request.</summary>
internal sealed class AdminHttp : IDisposable
{
    private readonly HttpClient _http;
    private readonly NodeTls? _tls;

    public string BaseUrl { get; }

    public AdminHttp(string hostPort, string? caFile = null)
    {
        var handler = new SocketsHttpHandler();
        if (caFile is not null)
        {
            _tls = NodeTls.Load(caFile, null, null);
            handler.SslOptions = _tls.ClientOptions(hostPort[..hostPort.LastIndexOf(':')], expectedNodeId: null);
        }
        _http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
        BaseUrl = $"{(caFile is null ? "http" : "https")}://{hostPort}";
    }

    public async Task<(HttpStatusCode Status, string Body, HttpResponseHeaders Headers)> SendAsync(HttpMethod method, string path, string? token = null, string? json = null)
    {
        using var request = new HttpRequestMessage(method, BaseUrl + path);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await _http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers);
    }

    public async Task<string> GetAsync(string path, string? token = null)
    {
        var (status, body, _) = await SendAsync(HttpMethod.Get, path, token);
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), $"GET {path}: {body}");
        return body;
    }

    public async Task<JsonElement> StatusAsync(string? token = null) => JsonDocument.Parse(await GetAsync("/status", token)).RootElement;

    /// <summary>A sample's value in Prometheus text, by name and a label it must carry; null when absent.</summary>
    public static double? Sample(string metrics, string name, string label)
    {
        foreach (var line in metrics.Split('\n'))
            if (line.StartsWith(name + "{", StringComparison.Ordinal) && line.Contains(label, StringComparison.Ordinal))
                return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        return null;
    }

    /// <summary>Mints a token with `georelay token` (the command operators use), returning it and its id.</summary>
    public static async Task<(string Token, string Id)> MintAsync(ClusterFixture cluster, string subject, string scope, TimeSpan patience)
    {
        var run = cluster.Run("token", $"token --config \"{cluster.ConfigPath}\" --subject {subject} --scope {scope} --ttl 1h");
        Assert.That(await run.WaitForExitAsync(patience), Is.EqualTo(0), run.Output);
        var token = Regex.Match(run.Output, @"^grt2\.\S+$", RegexOptions.Multiline).Value;
        var id = Regex.Match(run.Output, $@"token ([0-9a-f]{{16}}) for '{subject}'");
        Assert.That(token, Is.Not.Empty, run.Output);
        Assert.That(id.Success, Is.True, run.Output);
        return (token, id.Groups[1].Value);
    }

    public void Dispose()
    {
        _http.Dispose();
        _tls?.Dispose();
    }
}
