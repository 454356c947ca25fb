package rdsiam_test

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/rdsiam"
)

// Sign a token offline and look at what RDS will read from it. A program
// would pass the Credentials of its aws.Config instead of static ones, and
// would never print the token: here only its parameters are shown.
func Example() {
	creds := credentials.NewStaticCredentialsProvider(
		"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")
	src, err := rdsiam.New("mydb.abc123.us-east-1.rds.amazonaws.com:5432",
		"us-east-1", "app", creds)
	if err != nil {
		fmt.Println(err)
		return
	}
	before := time.Now()
	logins, err := src.Refresh(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(logins) // printed logins hide their passwords
	fmt.Println(src)    // and so does the source

	token, err := url.Parse("https://" + logins[0].Password)
	if err != nil {
		fmt.Println(err)
		return
	}
	q := token.Query()
	fmt.Println("host:", token.Host)
	fmt.Println("user:", q.Get("DBUser"), "action:", q.Get("Action"))
	fmt.Println("algorithm:", q.Get("X-Amz-Algorithm"), "expires:", q.Get("X-Amz-Expires"))
	fmt.Println("next token in:", src.NextRefresh().Sub(before).Round(time.Minute))
	// Output:
	// [app:[REDACTED]]
	// rdsiam.Source{user: "app", endpoint: "mydb.abc123.us-east-1.rds.amazonaws.com:5432", region: "us-east-1"}
	// host: mydb.abc123.us-east-1.rds.amazonaws.com:5432
	// user: app action: connect
	// algorithm: AWS4-HMAC-SHA256 expires: 900
	// next token in: 10m0s
}

// Open a pool that logs in with IAM tokens. Nothing connects until the
// first query; RDS requires TLS for IAM logins.
func ExampleNew() {
	creds := credentials.NewStaticCredentialsProvider(
		"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")
	src, err := rdsiam.New("mydb.abc123.us-east-1.rds.amazonaws.com:5432",
		"us-east-1", "app", creds)
	if err != nil {
		fmt.Println(err)
		return
	}
	db, err := gopqr.Open("host=mydb.abc123.us-east-1.rds.amazonaws.com port=5432 "+
		"dbname=app sslmode=require",
		gopqr.WithSource(src),
		gopqr.WithMaxLifetime(5*time.Minute))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	fmt.Println("pool ready")

	_, err = rdsiam.New("mydb.abc123.us-east-1.rds.amazonaws.com", "us-east-1", "app", creds)
	fmt.Println(err)
	// Output:
	// pool ready
	// rdsiam: endpoint "mydb.abc123.us-east-1.rds.amazonaws.com" is not host:port, such as mydb.abc123.us-east-1.rds.amazonaws.com:5432
}
