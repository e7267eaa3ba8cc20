// Command pulumi-resource-random is a STAND-IN for the Pulumi random provider
// plugin (pulumi-resource-random 4.19.0), written for this project's test
// machines, where the real plugin can be neither built nor downloaded.
//
// It serves exactly one resource type, random:index/randomPassword:RandomPassword.
// For that type it keeps the real provider's contract: the same inputs,
// defaults and validation, a replacement on any input change, and the
// outputs result and bcryptHash as secrets with the ID "none". Every other
// resource type, function and import of the real provider is missing, so do
// not install it where the real plugin can be installed.
//
// Install it into a Pulumi home with
//
//	pulumi plugin install resource random v4.19.0 --file pulumi-resource-random
//
// Every start writes a stand-in notice to stderr, and every Configure sends
// the same notice to the engine as a diagnostic, so the output of each run
// that used this binary names it.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// providerName is the package name that identifies the plugin to the engine.
const providerName = "random"

// providerVersion is the release of the real provider whose contract this
// stand-in keeps. The Go SDK v4.19.0 requests exactly this plugin version.
const providerVersion = "4.19.0"

// standInNotice marks every run that used this binary. The engine hides a
// resource plugin's stderr unless the plugin crashes or verbose logging is
// on, so Configure also sends it as a diagnostic, which the CLI shows.
const standInNotice = "pulumi-resource-random " + providerVersion +
	" STAND-IN (tools/random-standin): serves only " + passwordToken +
	"; the real random provider plugin cannot be installed on this machine"

func main() {
	fmt.Fprintln(os.Stderr, standInNotice)
	err := provider.Main(providerName, func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return newStandInProvider(host), nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-random stand-in: %v\n", err)
		os.Exit(1)
	}
}
