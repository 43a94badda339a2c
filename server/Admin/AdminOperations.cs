using System.Globalization;
using System.Text.Json;
using GeoRelay.Server.Hosting;
using GeoRelay.Server.Security;
using GeoRelay.Topology;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Admin;

/// <summary>
/// The admin routes that list and act on a node's clients: learners (list, disconnect one) and the address blacklist
/// (list, add, remove). Cuts and refusals happen in the engine host, under the engine's lock, as its own limits do.
/// </summary>
internal sealed class AdminOperations(AdminNode node, ILogger logger)
{
    private const int MaxBodyBytes = 4096;

    public IResult ListLearners() =>
        node.Learners() is { } learners
            ? AdminServer.Json(learners, AdminJson.Default.IReadOnlyListLearnerConnectionReport)
            : NoLearners();

    public IResult Disconnect(string? connectionText)
    {
        if (node.Learners() is not { } learners) return NoLearners();
        if (!int.TryParse(connectionText, NumberStyles.None, CultureInfo.InvariantCulture, out int connection))
            return AdminServer.Error(400, "bad-request", $"'{connectionText}' is not a connection id; GET /learners lists them (the `connection` field)");
        var learner = learners.FirstOrDefault(l => l.Connection == connection);
        string message = $"disconnected by an operator through the admin endpoint of {node.NodeId}";
        if (learner is null || !node.Host.DisconnectLearner(connection, message))
            return AdminServer.Error(404, "no-such-learner", $"{node.NodeId} has no open learner connection {connection}; GET /learners lists them");
        HostingLog.AdminDisconnect(logger, connection, learner.Id, learner.Remote ?? "?");
        return AdminServer.Json(new LearnerDisconnected(node.NodeId, connection), AdminJson.Default.LearnerDisconnected);
    }

    public IResult ListBlacklist()
    {
        var entries = node.Host.Blacklist.Entries();
        var list = new List<BlacklistReport>(entries.Count);
        foreach (var e in entries) list.Add(Report(e));
        return AdminServer.Json<IReadOnlyList<BlacklistReport>>(list, AdminJson.Default.IReadOnlyListBlacklistReport);
    }

    public async Task<IResult> AddToBlacklistAsync(HttpRequest request)
    {
        const string Example = "{\"address\": \"10.0.0.0/8\", \"duration\": \"1h\"} (duration optional: without it the entry stays until removed)";
        BlacklistRequest? body;
        try
        {
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted).ConfigureAwait(false);
            if (buffer.Length > MaxBodyBytes) return AdminServer.Error(400, "bad-request", $"the body is {buffer.Length} bytes; at most {MaxBodyBytes}");
            body = JsonSerializer.Deserialize(buffer.ToArray(), AdminJson.Default.BlacklistRequest);
        }
        catch (JsonException e)
        {
            return AdminServer.Error(400, "bad-request", $"the body must be JSON such as {Example}: {e.Message}");
        }
        if (body?.Address is null)
            return AdminServer.Error(400, "bad-request", $"the body has no \"address\"; send JSON such as {Example}");
        if (!AddressBlacklist.TryParseRange(body.Address, out var range, out var rangeError))
            return AdminServer.Error(400, "bad-request", "address: " + rangeError);
        TimeSpan? duration = null;
        if (body.Duration is { } text)
        {
            if (!ConfigUnits.TryParseDuration(text, out var parsed, out var durationError))
                return AdminServer.Error(400, "bad-request", "duration: " + durationError);
            if (parsed <= TimeSpan.Zero)
                return AdminServer.Error(400, "bad-request", $"duration: '{text}' must be longer than 0; leave it out for an entry that stays until removed");
            duration = parsed;
        }
        var entry = node.Host.Blacklist.Add(range, duration);
        int cut = node.Host.CutBlacklisted();
        HostingLog.Blacklisted(logger, entry.ToString(), cut);
        return AdminServer.Json(new BlacklistAdded(Report(entry), cut), AdminJson.Default.BlacklistAdded);
    }

    public IResult RemoveFromBlacklist(string? rangeText)
    {
        if (!AddressBlacklist.TryParseRange(rangeText, out var range, out var error))
            return AdminServer.Error(400, "bad-request", "address: " + error);
        if (node.Host.Blacklist.Remove(range) is not { } removed)
            return AdminServer.Error(404, "not-blacklisted", $"{range} is not on the blacklist of {node.NodeId} (or its time ran out); GET /blacklist lists it");
        HostingLog.Unblacklisted(logger, range.ToString());
        return AdminServer.Json(Report(removed), AdminJson.Default.BlacklistReport);
    }

    private IResult NoLearners() =>
        AdminServer.Error(404, "no-learners", $"{node.NodeId} is the {node.Role.ToString().ToLowerInvariant()} and serves no learners; learners connect to relays and members");

    private static BlacklistReport Report(BlacklistEntry e) => new(e.Range.ToString(), e.Added, e.Until);
}
