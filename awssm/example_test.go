package awssm_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/awssm"
	"github.com/gopqr/gopqr/internal/smfake"
)

// A Source reads a single-user RDS secret; while a rotation is in flight
// it serves the pending password after the current one. The store here is
// a local fake of Secrets Manager; logins print without their passwords.
func Example() {
	store := smfake.New() // a Secrets Manager on 127.0.0.1
	defer store.Close()
	store.CreateSecret("prod/app/db",
		`{"engine":"postgres","host":"db.internal","port":5432,"dbname":"app",`+
			`"username":"app","password":"s3cret-1"}`)

	client := secretsmanager.New(secretsmanager.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(store.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "example-secret-key", ""),
	})
	src, err := awssm.New(client, "prod/app/db")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	logins, err := src.Refresh(ctx)
	fmt.Println(logins, err, !src.NextRefresh().IsZero())

	// createSecret of a rotation: a new version labelled AWSPENDING.
	store.PutVersion("prod/app/db", `{"username":"app","password":"s3cret-2"}`, awssm.StagePending)
	logins, err = src.Refresh(ctx)
	fmt.Println(logins, err, !src.NextRefresh().IsZero())

	fmt.Println(store.Calls("AKIDEXAMPLE", "DescribeSecret"), "DescribeSecret,",
		store.Calls("AKIDEXAMPLE", "GetSecretValue"), "GetSecretValue")
	// Output:
	// [app:[REDACTED]] <nil> false
	// [app:[REDACTED] app:[REDACTED]] <nil> true
	// 2 DescribeSecret, 2 GetSecretValue
}

// In a program, build the client from the aws.Config it loaded at start-up
// and give the Source to gopqr. (This example is compiled, not run.)
func ExampleNew_awsConfig() {
	var cfg aws.Config // from config.LoadDefaultConfig(ctx) at start-up

	src, err := awssm.New(secretsmanager.NewFromConfig(cfg), "prod/app/db")
	if err != nil {
		log.Fatal(err)
	}
	db, err := gopqr.Open("host=db.internal dbname=app sslmode=verify-full",
		gopqr.WithSource(src), // Refresh, and NextRefresh as a gopqr.Scheduler
		gopqr.WithMaxLifetime(10*time.Minute),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
}
