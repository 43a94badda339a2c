namespace GeoRelay.Cli;

/// <summary>
/// One answer from a node's admin endpoint: the value of a 2xx answer, or the HTTP status (null when the node did not
/// answer) and a sentence saying why not.
/// </summary>
public readonly record struct AdminCall<T>(T? Value, int? Status, string? Error) where T : class
{
    public static AdminCall<T> Of(T value) => new(value, 200, null);
    public static AdminCall<T> Failed(int? status, string error) => new(null, status, error);
}
