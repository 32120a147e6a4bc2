package state

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// s3API holds the S3 calls the backend makes as method values of the
// SDK's client, and kmsAPI the KMS calls.
//
// The skyward binary is copied to every node, and the embedded collections
// store makes the linker keep every exported method of every type that may
// reach an interface: holding the calls as functions keeps the clients'
// types, and their hundreds of operations, out of the binary.
type s3API struct {
	HeadBucket          func(context.Context, *s3.HeadBucketInput, ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	GetBucketVersioning func(context.Context, *s3.GetBucketVersioningInput, ...func(*s3.Options)) (*s3.GetBucketVersioningOutput, error)
	GetObject           func(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject           func(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	DeleteObject        func(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

func newS3API(c *s3.Client) *s3API {
	return &s3API{
		HeadBucket:          c.HeadBucket,
		GetBucketVersioning: c.GetBucketVersioning,
		GetObject:           c.GetObject,
		PutObject:           c.PutObject,
		DeleteObject:        c.DeleteObject,
	}
}

type kmsAPI struct {
	GenerateDataKey func(context.Context, *kms.GenerateDataKeyInput, ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt         func(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

func newKMSAPI(c *kms.Client) *kmsAPI {
	return &kmsAPI{GenerateDataKey: c.GenerateDataKey, Decrypt: c.Decrypt}
}
