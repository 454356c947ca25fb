package otelmetrics

// WithNow replaces the clock of gopqr.all_rejected.duration in tests.
var WithNow = withNow
