using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using GeoRelay.Topology;
using GeoRelay.Transport.Security;

namespace GeoRelay.Server.Admin;

/// <summary>What one admin request came to: the body of a 2xx answer, or a sentence saying why there is none (with the HTTP status when there was one).</summary>
public readonly record struct AdminAnswer(string? Body, string? Error, int? Status, Exception? Failure);

/// <summary>One request to a node's admin endpoint: what <c>georelay status</c> and a node's console (asking its peers) share.</summary>
public static class AdminRequest
{
    /// <summary>One request to <paramref name="endpoint"/>, over HTTPS when <paramref name="tls"/> is given; never throws for what the node or network does.</summary>
    public static async Task<AdminAnswer> SendAsync(NodeEndpoint endpoint, HttpMethod method, string path, string? json, string? token,
        NodeTls? tls, TimeSpan timeout, CancellationToken ct)
    {
        var handler = new SocketsHttpHandler();
        if (tls is not null) handler.SslOptions = tls.ClientOptions(endpoint.Host, expectedNodeId: null);
        using var http = new HttpClient(handler) { Timeout = timeout };
        string url = $"{(tls is null ? "http" : "https")}://{endpoint}{path}";
        using var request = new HttpRequestMessage(method, url);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        try
        {
            using var response = await http.SendAsync(request, ct).ConfigureAwait(false);
            string body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            if (response.IsSuccessStatusCode) return new AdminAnswer(body, null, (int)response.StatusCode, null);
            return new AdminAnswer(null, $"{method} {url} answered {(int)response.StatusCode} {response.ReasonPhrase}: {ErrorMessage(body)}", (int)response.StatusCode, null);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            string why = e is TaskCanceledException ? string.Create(CultureInfo.InvariantCulture, $"no answer within {timeout.TotalSeconds:0.###} s") : e.Message;
            return new AdminAnswer(null, $"cannot read {url}: {why}", null, e);
        }
    }

    /// <summary>The message of an admin error body, or the body itself when it is not one.</summary>
    private static string ErrorMessage(string body)
    {
        try
        {
            if (JsonSerializer.Deserialize(body, AdminJson.Default.AdminError) is { Message: { } message }) return message;
        }
        catch (JsonException) { }
        return body.Length == 0 ? "(no body)" : body;
    }
}
