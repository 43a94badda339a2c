using GeoRelay.Cli;

return await GeoRelayCommandLine.Create().Parse(args).InvokeAsync();
