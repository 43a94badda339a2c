using System.Buffers;
using System.Text;
using System.Text.Json;
using GeoRelay.Server.Web;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Web;

/// <summary>The JSON a web client gets per entry (docs/web.md): text as text, any other bytes as base64, one line.</summary>
[TestFixture]
public sealed class WebEntryJsonTests
{
    private static string Encode(ulong index, byte[] key, byte[] payload)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using var json = WebEntryJson.CreateWriter(buffer);
        WebEntryJson.Write(json, index, key, payload);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    [Test]
    public void TextKeyAndPayloadGoAsStringsWithTheIndex() =>
        Assert.That(Encode(42, "orders/7"u8.ToArray(), "{\"qty\": 3} ünïcode €"u8.ToArray()),
            Is.EqualTo("{\"index\":42,\"key\":\"orders/7\",\"payload\":\"{\\\"qty\\\": 3} ünïcode €\"}"));

    [Test]
    public void BytesThatAreNotUtf8GoAsBase64UnderTheirOwnName()
    {
        var doc = JsonDocument.Parse(Encode(7, [0x6B, 0xC3], [0xFF, 0xFE, 0x00, 0x41]));
        Assert.Multiple(() =>
        {
            Assert.That(doc.RootElement.GetProperty("key_base64").GetString(), Is.EqualTo(Convert.ToBase64String(new byte[] { 0x6B, 0xC3 })));
            Assert.That(doc.RootElement.GetProperty("payload_base64").GetString(), Is.EqualTo("//4AQQ=="));
            Assert.That(doc.RootElement.TryGetProperty("key", out _), Is.False);
            Assert.That(doc.RootElement.TryGetProperty("payload", out _), Is.False);
        });
    }

    [Test]
    public void ALoneSurrogateEncodedAsUtf8IsNotValidTextAndGoesAsBase64()
    {
        byte[] surrogate = [0xED, 0xA0, 0x80]; // U+D800 in "UTF-8": not valid UTF-8
        Assert.That(Encode(1, [], surrogate), Does.Contain("\"payload_base64\":\"7aCA\""));
    }

    [Test]
    public void LineBreaksAndControlCharactersAreEscapedSoAMessageIsOneLine()
    {
        string text = Encode(3, "k"u8.ToArray(), "one\ntwo\r\nthree\0\u2028"u8.ToArray());
        Assert.That(text, Does.Not.Contain("\n").And.Not.Contain("\r"));
        Assert.That(JsonDocument.Parse(text).RootElement.GetProperty("payload").GetString(), Is.EqualTo("one\ntwo\r\nthree\0\u2028"));
    }

    [Test]
    public void AnEmptyKeyAndPayloadAreEmptyStrings() =>
        Assert.That(Encode(ulong.MaxValue, [], []), Is.EqualTo("{\"index\":18446744073709551615,\"key\":\"\",\"payload\":\"\"}"));

    [Test]
    public void AWriterResetOntoAClearedBufferWritesTheNextMessageAlone()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using var json = WebEntryJson.CreateWriter(buffer);
        WebEntryJson.Write(json, 1, "a"u8, "first"u8);
        buffer.ResetWrittenCount();
        json.Reset(buffer);
        WebEntryJson.Write(json, 2, "b"u8, "second"u8);
        Assert.That(Encoding.UTF8.GetString(buffer.WrittenSpan), Is.EqualTo("{\"index\":2,\"key\":\"b\",\"payload\":\"second\"}"));
    }
}
