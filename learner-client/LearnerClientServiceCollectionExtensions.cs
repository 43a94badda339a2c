using GeoRelay.LearnerClient;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

// In the conventional namespace so `services.AddGeoRelayLearner(...)` is found without another using.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the GeoRelay learner client with a dependency-injection container.</summary>
public static class LearnerClientServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="LearnerClient"/> (and its options). It connects when a subscription
    /// starts and logs through the container's <see cref="ILoggerFactory"/> when there is one.
    /// </summary>
    public static IServiceCollection AddGeoRelayLearner(this IServiceCollection services, LearnerClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return services.AddGeoRelayLearner(_ => options);
    }

    /// <inheritdoc cref="AddGeoRelayLearner(IServiceCollection, LearnerClientOptions)"/>
    public static IServiceCollection AddGeoRelayLearner(this IServiceCollection services, Func<IServiceProvider, LearnerClientOptions> options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.TryAddSingleton<LearnerClientOptions>(sp => options(sp));
        services.TryAddSingleton(sp => new LearnerClient(sp.GetRequiredService<LearnerClientOptions>(),
            sp.GetService<ILoggerFactory>()?.CreateLogger<LearnerClient>()));
        return services;
    }
}
