package prommetrics

// WithNow replaces the clock of gopqr_all_rejected_duration_seconds in tests.
var WithNow = withNow
