namespace GeoRelay.Transport.Security;

/// <summary>
/// Key ids and token ids whose tokens are refused: <c>auth.revoked-keys</c>, <c>auth.revoked-tokens</c>, and the
/// file <c>auth.revoked-file</c> names, one revocation per line (<c>key KID</c> or <c>token ID</c>; <c>#</c> comments).
/// </summary>
public sealed class TokenRevocations
{
    public static TokenRevocations None { get; } = new([], []);

    public TokenRevocations(IEnumerable<string> keyIds, IEnumerable<string> tokenIds)
    {
        KeyIds = new HashSet<string>(keyIds, StringComparer.Ordinal);
        TokenIds = new HashSet<string>(tokenIds, StringComparer.OrdinalIgnoreCase);
    }

    public IReadOnlySet<string> KeyIds { get; }
    public IReadOnlySet<string> TokenIds { get; }

    /// <summary>Those given, plus those in <paramref name="file"/> when it is set.</summary>
    /// <exception cref="InvalidDataException">A line of the file is malformed; the message names the file and line.</exception>
    public static TokenRevocations Load(IEnumerable<string> keyIds, IEnumerable<string> tokenIds, string? file)
    {
        var keys = new List<string>(keyIds);
        var tokens = new List<string>(tokenIds);
        if (file is not null)
        {
            int number = 0;
            foreach (var raw in File.ReadLines(file))
            {
                number++;
                var line = raw.AsSpan().Trim();
                if (line.IsEmpty || line[0] == '#') continue;
                int space = line.IndexOfAny(' ', '\t');
                var kind = space < 0 ? line : line[..space];
                var id = space < 0 ? default : line[(space + 1)..].Trim();
                if (kind is "key" && TokenClaims.IsKeyId(id)) keys.Add(id.ToString());
                else if (kind is "token" && TokenClaims.IsTokenId(id)) tokens.Add(id.ToString());
                else throw new InvalidDataException($"{file}:{number}: expected 'key <key id>' or 'token <16 hex digits>', not '{raw.Trim()}'");
            }
        }
        return new TokenRevocations(keys, tokens);
    }
}
