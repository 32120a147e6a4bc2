package aws

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/smithy-go"
)

// errorCode is the AWS error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// quotaCodes are the error codes of an account limit reached.
var quotaCodes = map[string]bool{
	"VcpuLimitExceeded": true, "InstanceLimitExceeded": true, "MaxSpotInstanceCountExceeded": true,
	"ResourceLimitExceeded": true, "RulesPerSecurityGroupLimitExceeded": true, "SecurityGroupLimitExceeded": true,
	"KeyPairLimitExceeded": true, "VolumeLimitExceeded": true,
}

// apiError turns the errors a user meets into one clear line, keeping
// the SDK's error wrapped for errors.Is/As. op says what was being done.
func (p *Provider) apiError(op string, err error) error {
	code := errorCode(err)
	region := p.awsCfg.Region
	var dnsErr *net.DNSError
	switch {
	case code == "AuthFailure" || code == "UnauthorizedOperation" || code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch":
		return fmt.Errorf("%s: AWS refused the credentials found by the SDK's default chain (%s): %w", op, code, err)
	case code == "InvalidAMIID.NotFound" || code == "InvalidAMIID.Malformed" || code == "InvalidAMIID.Unavailable":
		return fmt.Errorf("%s: AMI not found in %s (%s); set ami to an image of this region: %w", op, region, code, err)
	case code == "InsufficientInstanceCapacity" || code == "InsufficientCapacity" || code == "Unsupported" && strings.Contains(err.Error(), "capacity"):
		return fmt.Errorf("%s: AWS has no capacity for this instance type in %s now (InsufficientInstanceCapacity); "+
			"try another instance_type or subnet_id (another zone), or on-demand allocation: %w", op, region, err)
	case code == "RequestLimitExceeded" || code == "Throttling":
		return fmt.Errorf("%s: AWS throttled the requests (RequestLimitExceeded) and retrying with backoff did not help; "+
			"try again later or with a lower -parallelism: %w", op, err)
	case quotaCodes[code] || strings.HasSuffix(code, "LimitExceeded"):
		return fmt.Errorf("%s: an AWS quota of this account is exceeded in %s (%s); ask for a higher quota in Service Quotas, or use fewer or smaller nodes: %w", op, region, code, err)
	case code == "InvalidSubnetID.NotFound":
		return fmt.Errorf("%s: subnet %q not found in %s: %w", op, p.cfg.SubnetID, region, err)
	case errors.As(err, &dnsErr) && p.cfg.Endpoint == "":
		return fmt.Errorf("%s: cannot resolve the EC2 endpoint of region %q (unknown region?): %w", op, region, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
