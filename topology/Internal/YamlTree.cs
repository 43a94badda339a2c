using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace GeoRelay.Topology.Internal;

// A minimal YAML document model that, unlike YamlDotNet's RepresentationModel, keeps duplicate
// mapping keys (so they can be reported with their positions instead of aborting the load).

internal abstract class YamlNode(int line, int column)
{
    public int Line { get; } = line;
    public int Column { get; } = column;

    public abstract string KindName { get; }
}

internal sealed class YamlScalar(int line, int column, string value, bool isPlain) : YamlNode(line, column)
{
    public string Value { get; } = value;

    /// <summary>Plain (unquoted) empty, <c>~</c> or <c>null</c>: YAML's null.</summary>
    public bool IsNull => isPlain && Value is "" or "~" or "null" or "Null" or "NULL";

    public override string KindName => IsNull ? "nothing" : "a string";
}

internal sealed class YamlSequence(int line, int column) : YamlNode(line, column)
{
    public List<YamlNode> Items { get; } = [];

    public override string KindName => "a list";
}

internal sealed class YamlMapping(int line, int column) : YamlNode(line, column)
{
    public List<KeyValuePair<YamlNode, YamlNode>> Entries { get; } = [];

    public override string KindName => "a mapping";
}

internal static class YamlTreeReader
{
    private const int MaxDepth = 64;

    /// <summary>
    /// Reads one YAML document. Returns null (with a problem) on a syntax error; returns an empty
    /// mapping for an empty file so that the caller reports the missing keys.
    /// </summary>
    public static YamlNode? Read(string yaml, Action<int, int, string> problem)
    {
        var anchors = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        var openFlow = new Stack<(int Line, int Column, char Bracket)>();
        try
        {
            var parser = new Parser(new StringReader(yaml));
            parser.Consume<StreamStart>();
            if (parser.Accept<StreamEnd>(out var end))
            {
                return new YamlMapping(Line(end.Start), Column(end.Start));
            }
            parser.Consume<DocumentStart>();
            var root = ReadNode(parser, anchors, openFlow, 0);
            parser.Consume<DocumentEnd>();
            if (parser.Accept<DocumentStart>(out var second))
            {
                problem(Line(second.Start), Column(second.Start), "only one YAML document is allowed in a topology file");
                return null;
            }
            return root;
        }
        catch (YamlException e)
        {
            string message = StripPosition(e.Message);
            var (line, column) = (Line(e.Start), Column(e.Start));
            if (message.Contains("tab", StringComparison.Ordinal))
            {
                // YamlDotNet points at the enclosing mapping; the offending tab is more useful.
                (line, column) = FirstIndentingTab(yaml) ?? (line, column);
            }
            problem(line, column, "YAML syntax error: " + message);
            return null;
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet 16 throws this (without a position) for a flow collection left open at the
            // end of the file; point at the innermost bracket that was opened and not closed.
            if (openFlow.TryPeek(out var open))
            {
                problem(open.Line, open.Column, $"YAML syntax error: '{open.Bracket}' is never closed");
            }
            else
            {
                problem(1, 1, "YAML syntax error: unexpected end of the file");
            }
            return null;
        }
    }

    private static (int Line, int Column)? FirstIndentingTab(string yaml)
    {
        int line = 1;
        int column = 1;
        bool indentation = true;
        foreach (char c in yaml)
        {
            if (c == '\n')
            {
                line++;
                column = 1;
                indentation = true;
                continue;
            }
            if (indentation && c == '\t')
            {
                return (line, column);
            }
            indentation &= c == ' ';
            column++;
        }
        return null;
    }

    private static YamlNode ReadNode(IParser parser, Dictionary<string, YamlNode> anchors, Stack<(int Line, int Column, char Bracket)> openFlow, int depth)
    {
        var current = parser.Current ?? throw new YamlException("unexpected end of the YAML stream");
        if (depth > MaxDepth)
        {
            throw new YamlException(current.Start, current.End, $"nesting is deeper than {MaxDepth} levels");
        }
        switch (current)
        {
            case AnchorAlias alias:
                parser.MoveNext();
                if (anchors.TryGetValue(alias.Value.Value, out var target))
                {
                    return target;
                }
                throw new YamlException(alias.Start, alias.End, $"unknown alias '*{alias.Value.Value}'");

            case Scalar scalar:
                parser.MoveNext();
                var node = new YamlScalar(Line(scalar.Start), Column(scalar.Start), scalar.Value, scalar.Style == ScalarStyle.Plain);
                Remember(scalar, node, anchors);
                return node;

            case SequenceStart start:
            {
                parser.MoveNext();
                var sequence = new YamlSequence(Line(start.Start), Column(start.Start));
                Remember(start, sequence, anchors);
                bool flow = start.Style == SequenceStyle.Flow;
                if (flow)
                {
                    openFlow.Push((sequence.Line, sequence.Column, '['));
                }
                while (!parser.TryConsume<SequenceEnd>(out _))
                {
                    sequence.Items.Add(ReadNode(parser, anchors, openFlow, depth + 1));
                }
                if (flow)
                {
                    openFlow.Pop();
                }
                return sequence;
            }

            case MappingStart start:
            {
                parser.MoveNext();
                var mapping = new YamlMapping(Line(start.Start), Column(start.Start));
                Remember(start, mapping, anchors);
                bool flow = start.Style == MappingStyle.Flow;
                if (flow)
                {
                    openFlow.Push((mapping.Line, mapping.Column, '{'));
                }
                while (!parser.TryConsume<MappingEnd>(out _))
                {
                    var key = ReadNode(parser, anchors, openFlow, depth + 1);
                    var value = ReadNode(parser, anchors, openFlow, depth + 1);
                    mapping.Entries.Add(new(key, value));
                }
                if (flow)
                {
                    openFlow.Pop();
                }
                return mapping;
            }

            default:
                throw new YamlException(current.Start, current.End, $"unexpected {current.GetType().Name}");
        }
    }

    private static void Remember(NodeEvent e, YamlNode node, Dictionary<string, YamlNode> anchors)
    {
        if (!e.Anchor.IsEmpty)
        {
            anchors[e.Anchor.Value] = node;
        }
    }

    private static int Line(Mark mark) => (int)Math.Min(mark.Line, int.MaxValue);

    private static int Column(Mark mark) => (int)Math.Min(mark.Column, int.MaxValue);

    // YamlException.Message starts with "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; we print our own position.
    private static string StripPosition(string message)
    {
        int marker = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line:", StringComparison.Ordinal) && marker >= 0 ? message[(marker + 3)..] : message;
    }
}
