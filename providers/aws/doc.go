// Package aws is the AWS EC2 provider: a pool's shared infrastructure is
// an imported key pair and a security group, and each node is one EC2
// instance, reached over SSH at its public or private address or through
// an OpenSSH ProxyCommand.
//
// It talks to EC2 (and SSM, for the default AMI) with the AWS SDK for Go
// v2, with credentials from the SDK's default chain only; nothing secret
// is returned in an Object. Every object carries the skyward tags
// (providers.LabelManaged, LabelLineage, LabelAddress), so that List (one
// paginated DescribeInstances, one DescribeSecurityGroups and one
// DescribeKeyPairs whatever the pool's size) finds what a crashed apply
// left behind.
//
// It does not touch skyward's state, plans or executor, and it never
// connects to a node: SSH is the controller's.
package aws
