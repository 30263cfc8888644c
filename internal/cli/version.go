package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/internal/version"
)

// VersionCommand returns `version`, which prints
// "baton <version> (<go version> <os>/<arch>)".
func VersionCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of baton",
		Args:  ExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(env.Stdout, "baton %s (%s %s/%s)\n", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
