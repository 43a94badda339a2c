using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace GeoRelay.Bench.CrossRegion;

/// <summary>A cross-region benchmark scenario, read from bench/scenarios/NAME.yaml (see default.yaml for every key).</summary>
public sealed class Scenario
{
    public string Name { get; set; } = "";
    public string LeaderRegion { get; set; } = "";
    public Dictionary<string, RegionSpec> Regions { get; set; } = new();
    public List<LinkSpec> Links { get; set; } = new();
    public double IntraRegionDelayMs { get; set; }
    public int LearnersPerRegion { get; set; } = 100;
    public PayloadSpec Payload { get; set; } = new();
    public StepSpec Warmup { get; set; } = new() { Rate = 500, Seconds = 3 };
    public List<int> Rates { get; set; } = new();
    public double StepSeconds { get; set; } = 8;
    public double DrainSeconds { get; set; } = 10;
    public FaultSpec? Fault { get; set; }
    public List<string> Systems { get; set; } = new();
    /// <summary>batch.linger of the GeoRelay systems (ms); 0, the default, is natural batching (no linger line in the topology).</summary>
    public double GeorelayLingerMs { get; set; }

    public sealed class RegionSpec
    {
        public int Members { get; set; } = 1;
        public int Relays { get; set; }

        /// <summary>The old spelling of <see cref="Relays"/>: scenario files written before the rename still load.</summary>
        public int Proxies { get => Relays; set => Relays = value; }
    }

    public sealed class LinkSpec
    {
        public List<string> Between { get; set; } = new();
        public double DelayMs { get; set; }
        public double JitterMs { get; set; }
        public double BandwidthMbps { get; set; }
    }

    public sealed class PayloadSpec
    {
        public string Corpus { get; set; } = "mixed";
        public int MaxBytes { get; set; } = 1024;
    }

    public sealed class StepSpec
    {
        public int Rate { get; set; }
        public double Seconds { get; set; }
    }

    public sealed class FaultSpec
    {
        public int Rate { get; set; } = 1000;
        public double Seconds { get; set; } = 15;
        public KillRelaySpec? KillRelay { get; set; }

        /// <summary>The old spelling of <see cref="KillRelay"/>.</summary>
        public KillRelaySpec? KillProxy { get => KillRelay; set => KillRelay = value; }
        public CutLinkSpec? CutLink { get; set; }
    }

    public sealed class KillRelaySpec
    {
        public string Region { get; set; } = "";
        public double AtSeconds { get; set; }
    }

    public sealed class CutLinkSpec
    {
        public List<string> Between { get; set; } = new();
        public double AtSeconds { get; set; }
        public double Seconds { get; set; }
    }

    public static readonly string[] KnownSystems = ["direct", "relays-plain", "mux-plain", "georelay", "georelay-durable", "nats"];

    /// <summary>Systems whose learners get entries once durable where they are served, not once committed: their floor is the one-way delay.</summary>
    public static bool DeliversDurable(string system) => system is "nats" or "georelay-durable";

    public static Scenario Load(string path)
    {
        var deserializer = new DeserializerBuilder().WithNamingConvention(HyphenatedNamingConvention.Instance).Build();
        Scenario scenario;
        try
        {
            scenario = deserializer.Deserialize<Scenario>(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path}: empty scenario");
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new InvalidDataException($"{path}:{e.Start.Line}:{e.Start.Column}: {e.Message}", e);
        }
        scenario.Validate(path);
        return scenario;
    }

    private void Validate(string path)
    {
        var problems = new List<string>();
        for (int i = 0; i < Systems.Count; i++)
            if (Systems[i] == "proxies-plain") Systems[i] = "relays-plain"; // the old spelling
        if (GeorelayLingerMs < 0 || GeorelayLingerMs > 1000) problems.Add($"georelay-linger-ms must be 0..1000, got {GeorelayLingerMs}");
        if (!Regions.ContainsKey(LeaderRegion)) problems.Add($"leader-region '{LeaderRegion}' is not one of the regions");
        foreach (var (name, region) in Regions)
        {
            if (region.Members < 1) problems.Add($"region {name}: members must be at least 1");
            if (name != LeaderRegion && region.Relays < 1) problems.Add($"region {name}: a region other than the leader's needs at least one relay");
        }
        var names = Regions.Keys.ToList();
        for (int i = 0; i < names.Count; i++)
            for (int j = i + 1; j < names.Count; j++)
                if (FindLink(names[i], names[j]) is null) problems.Add($"links: no entry between {names[i]} and {names[j]}");
        foreach (var link in Links)
        {
            if (link.Between.Count != 2 || link.Between.Any(r => !Regions.ContainsKey(r)) || link.Between[0] == link.Between[1])
                problems.Add($"links: 'between' must name two different regions, got [{string.Join(", ", link.Between)}]");
            if (link.DelayMs < 0 || link.JitterMs < 0 || link.BandwidthMbps < 0) problems.Add($"links [{string.Join(", ", link.Between)}]: negative value");
        }
        if (LearnersPerRegion < 1) problems.Add("learners-per-region must be at least 1");
        if (Payload.Corpus is not ("kv" or "dpkg" or "mixed")) problems.Add($"payload.corpus must be kv, dpkg or mixed, got '{Payload.Corpus}'");
        if (Payload.MaxBytes is < 64 or > 1 << 20) problems.Add("payload.max-bytes must be within 64..1048576");
        if (Rates.Count == 0 || Rates.Any(r => r <= 0)) problems.Add("rates must list at least one positive rate");
        if (StepSeconds <= 0) problems.Add("step-seconds must be positive");
        if (Systems.Count == 0) problems.Add("systems must list at least one of " + string.Join(", ", KnownSystems));
        foreach (var s in Systems)
            if (!KnownSystems.Contains(s)) problems.Add($"systems: unknown '{s}' (known: {string.Join(", ", KnownSystems)})");
        if (Fault?.KillRelay is { } kill && (!Regions.TryGetValue(kill.Region, out var r2) || r2.Relays < 2))
            problems.Add($"fault.kill-relay.region '{kill.Region}' must be a region with at least two relays");
        if (Fault?.CutLink is { } cut && (cut.Between.Count != 2 || FindLink(cut.Between[0], cut.Between[1]) is null))
            problems.Add($"fault.cut-link.between must name two linked regions");
        if (problems.Count > 0)
            throw new InvalidDataException($"{path}: invalid scenario:\n  " + string.Join("\n  ", problems));
    }

    public LinkSpec? FindLink(string a, string b) =>
        Links.FirstOrDefault(l => l.Between.Count == 2 && ((l.Between[0] == a && l.Between[1] == b) || (l.Between[0] == b && l.Between[1] == a)));

    /// <summary>The one-way delay between two regions (0 within one).</summary>
    public double DelayMs(string a, string b) => a == b ? 0 : FindLink(a, b)!.DelayMs;

    /// <summary>
    /// The physical floor for a learner of <paramref name="system"/> in <paramref name="region"/>: the one-way delay from
    /// the leader's region when learners get durable entries (NATS, georelay-durable), else <see cref="CommittedFloorMs"/>.
    /// </summary>
    public double FloorMs(string region, string system) => DeliversDurable(system) ? DelayMs(LeaderRegion, region) : CommittedFloorMs(region);

    /// <summary>
    /// The earliest a learner in <paramref name="region"/> could know an entry committed: a member in region X holds it
    /// one leader-to-X delay after the append, and word of that reaches the region X-to-region later; the entry is
    /// committed once a majority of the members (the benchmark runs with <c>elections: false</c> and <c>quorum: majority</c>,
    /// where the leader does not count) hold it. The smallest such moment is the majority-th earliest of those times.
    /// </summary>
    public double CommittedFloorMs(string region)
    {
        var known = new List<double>();
        foreach (var (name, spec) in Regions)
            for (int i = 0; i < spec.Members; i++) known.Add(DelayMs(LeaderRegion, name) + DelayMs(name, region));
        known.Sort();
        return known[known.Count / 2];
    }
}
