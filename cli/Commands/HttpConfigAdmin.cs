using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using GeoRelay.Server.Admin;
using GeoRelay.Topology;
using GeoRelay.Transport.Security;

namespace GeoRelay.Cli;

/// <summary><see cref="IConfigAdmin"/> over HTTP(S), with the token and CA the command was given.</summary>
internal sealed class HttpConfigAdmin(string? token, NodeTls? tls) : IConfigAdmin, IDisposable
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);

    public Task<AdminCall<ConfigReport>> ConfigAsync(string admin, CancellationToken ct) =>
        SendAsync(admin, HttpMethod.Get, "/config", null, AdminJson.Default.ConfigReport, ct);

    public Task<AdminCall<ConfigProposed>> ProposeAsync(string admin, Membership next, CancellationToken ct) =>
        SendAsync(admin, HttpMethod.Post, "/config/propose",
            JsonSerializer.Serialize(new ConfigProposal(Convert.ToBase64String(next.Encode())), AdminJson.Default.ConfigProposal), AdminJson.Default.ConfigProposed, ct);

    public Task<AdminCall<ConfigProgress>> ProgressAsync(string admin, string node, CancellationToken ct) =>
        SendAsync(admin, HttpMethod.Get, "/config/progress/" + Uri.EscapeDataString(node), null, AdminJson.Default.ConfigProgress, ct);

    public Task<AdminCall<TransferStarted>> TransferLeadershipAsync(string admin, string to, CancellationToken ct) =>
        SendAsync(admin, HttpMethod.Post, "/transfer-leader/" + Uri.EscapeDataString(to), null, AdminJson.Default.TransferStarted, ct);

    public void Dispose() => tls?.Dispose();

    private async Task<AdminCall<T>> SendAsync<T>(string admin, HttpMethod method, string path, string? json, JsonTypeInfo<T> type, CancellationToken ct) where T : class
    {
        if (!NodeEndpoint.TryParseAdmin(admin, out var endpoint, out var error)) return AdminCall<T>.Failed(null, $"admin endpoint '{admin}': {error}");
        var answer = await AdminRequest.SendAsync(endpoint, method, path, json, token, tls, RequestTimeout, ct).ConfigureAwait(false);
        if (answer.Body is null) return AdminCall<T>.Failed(answer.Status, answer.Error ?? "no answer");
        try
        {
            return JsonSerializer.Deserialize(answer.Body, type) is { } value ? AdminCall<T>.Of(value) : AdminCall<T>.Failed(answer.Status, $"{path} answered null");
        }
        catch (JsonException e)
        {
            return AdminCall<T>.Failed(answer.Status, $"{path} answered what is not its JSON: {e.Message}");
        }
    }
}
