module github.com/gopqr/gopqr

go 1.26.8

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/lib/pq v1.12.3
	go.uber.org/goleak v1.3.0
	go.uber.org/zap v1.28.0
)

require go.uber.org/multierr v1.10.0 // indirect
