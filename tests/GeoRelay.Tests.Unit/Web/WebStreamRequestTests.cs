using GeoRelay.Server.Web;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Web;

/// <summary>What GET /stream accepts (docs/web.md), and what it says about what it refuses.</summary>
[TestFixture]
public sealed class WebStreamRequestTests
{
    private static (WebStreamRequest? Request, int Status, string? Error) Parse(string query, params (string Name, string Value)[] headers)
    {
        var context = new DefaultHttpContext();
        context.Request.QueryString = new QueryString(query.Length == 0 ? "" : "?" + query);
        foreach (var (name, value) in headers) context.Request.Headers.Append(name, value);
        WebStreamRequest.TryParse(context.Request.Query, context.Request.Headers, out var request, out int status, out string? error);
        return (request, status, error);
    }

    [Test]
    public void FromPrefixAndAcceptAreRead()
    {
        var (request, status, error) = Parse("from=17&prefix=orders%2F", ("Accept", "text/event-stream"));
        Assert.That(error, Is.Null);
        Assert.That(status, Is.EqualTo(200));
        Assert.That(request, Is.EqualTo(new WebStreamRequest(17, "orders/", null, ServerSentEvents: true)));
    }

    [Test]
    public void LastEventIdResumesAfterItAndWinsOverFrom()
    {
        Assert.That(Parse("from=1", ("Last-Event-ID", "41")).Request!.From, Is.EqualTo(42UL));
        Assert.That(Parse("", ("Last-Event-ID", "0")).Request!.From, Is.EqualTo(1UL), "a client that saw nothing yet");
    }

    [TestCase("from=abc", "from must be a log index, a whole number from 1, not 'abc'")]
    [TestCase("from=0", "not '0'")]
    [TestCase("from=%2B5", "not '+5'")]
    [TestCase("from=18446744073709551616", "not '18446744073709551616'")]
    [TestCase("prefix=a", "from is required")]
    [TestCase("from=1&from=1", "from is given 2 times")]
    public void ABadFromIs400SayingWhatIsWrong(string query, string reason)
    {
        var (request, status, error) = Parse(query);
        Assert.That((request, status), Is.EqualTo(((WebStreamRequest?)null, 400)));
        Assert.That(error, Does.Contain(reason));
    }

    [Test]
    public void ABadLastEventIdIs400()
    {
        var (_, status, error) = Parse("from=1", ("Last-Event-ID", "x7"));
        Assert.That(status, Is.EqualTo(400));
        Assert.That(error, Does.Contain("Last-Event-ID header must be the index of the last event received"));
    }

    [Test]
    public void BatchIsOneOrZeroAndOffByDefault()
    {
        Assert.That(Parse("from=1").Request!.Batch, Is.False);
        Assert.That(Parse("from=1&batch=1").Request!.Batch, Is.True);
        Assert.That(Parse("from=1&batch=true").Request!.Batch, Is.True);
        Assert.That(Parse("from=1&batch=0").Request!.Batch, Is.False);
        var (_, status, error) = Parse("from=1&batch=yes");
        Assert.That(status, Is.EqualTo(400));
        Assert.That(error, Does.Contain("batch must be 1").And.Contain("'yes'"));
    }

    [Test]
    public void APrefixLongerThan1024BytesIs400()
    {
        var (_, status, error) = Parse("from=1&prefix=" + new string('é', 513));
        Assert.That(status, Is.EqualTo(400));
        Assert.That(error, Does.Contain("prefix must be at most 1024 bytes in UTF-8"));
        Assert.That(Parse("from=1&prefix=" + new string('é', 512)).Error, Is.Null);
    }

    [Test]
    public void TheTokenComesFromTheBearerHeaderElseTheQuery()
    {
        Assert.That(Parse("from=1&token=q", ("Authorization", "Bearer h")).Request!.Token, Is.EqualTo("h"));
        Assert.That(Parse("from=1&token=q").Request!.Token, Is.EqualTo("q"));
        Assert.That(Parse("from=1").Request!.Token, Is.Null);
    }

    [Test]
    public void AnAuthorizationHeaderThatIsNotBearerIs401()
    {
        var (_, status, error) = Parse("from=1", ("Authorization", "Basic dXNlcjpwYXNz"));
        Assert.That(status, Is.EqualTo(401));
        Assert.That(error, Is.EqualTo("the Authorization header must read `Bearer <token>`"));
    }

    [Test]
    public void WithoutAcceptEventStreamTheRequestIsNotServerSentEvents() =>
        Assert.That(Parse("from=1", ("Accept", "application/json")).Request!.ServerSentEvents, Is.False);

    [Test]
    public void ALongWebSocketCloseReasonIsCutTo123BytesOfUtf8()
    {
        string reason = WebSocketSink.Truncate(new string('ü', 100));
        Assert.That(System.Text.Encoding.UTF8.GetByteCount(reason), Is.LessThanOrEqualTo(123));
        Assert.That(reason, Does.EndWith("…").And.StartWith("üü"));
        Assert.That(WebSocketSink.Truncate("short"), Is.EqualTo("short"));
    }
}
