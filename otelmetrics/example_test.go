package otelmetrics_test

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/otelmetrics"
)

// Register a connector's statistics on a meter and collect them once, the
// way a periodic exporter does. A ManualReader stands in for the
// exporter; nothing connects, as a new connector has opened no connection
// yet.
func ExampleRegister() {
	conn, err := gopqr.NewConnector("host=127.0.0.1 dbname=app",
		gopqr.WithPairs(
			gopqr.Pair{Username: "app_odd", Password: "s3cret-odd"},
			gopqr.Pair{Username: "app_even", Password: "s3cret-even"},
		))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	reg, err := otelmetrics.Register(provider.Meter("github.com/gopqr/gopqr"), conn,
		otelmetrics.WithAttributes(attribute.String("db.client.connection.pool.name", "orders")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer reg.Unregister() // stop reading conn's Stats

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		var v any
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			v = d.DataPoints[0].Value
		case metricdata.Gauge[int64]:
			v = d.DataPoints[0].Value
		case metricdata.Gauge[float64]:
			v = d.DataPoints[0].Value
		}
		fmt.Printf("%-28s %-13s %v\n", m.Name, m.Unit, v)
	}
	// Output:
	// gopqr.connects               {connection}  0
	// gopqr.connect.errors         {error}       0
	// gopqr.login.rejections       {rejection}   0
	// gopqr.fallbacks              {connection}  0
	// gopqr.all_rejected.episodes  {episode}     0
	// gopqr.refreshes              {refresh}     0
	// gopqr.refresh.errors         {error}       0
	// gopqr.evictions              {connection}  0
	// gopqr.generation             {generation}  1
	// gopqr.login.count            {login}       2
	// gopqr.all_rejected.active    {episode}     0
	// gopqr.all_rejected.duration  s             0
}
