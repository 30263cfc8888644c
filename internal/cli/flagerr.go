package cli

import (
	"fmt"
	"regexp"

	"github.com/spf13/cobra"
)

// strconvErr matches the strconv text that pflag puts in its errors for a
// value of the wrong type (`strconv.ParseInt: parsing "abc": invalid syntax`).
var strconvErr = regexp.MustCompile(`strconv\.Parse(Int|Uint|Float|Bool|Duration): parsing "(?:[^"\\]|\\.)*": (invalid syntax|value out of range)`)

var strconvKinds = map[string]string{"Int": "an integer", "Uint": "a non-negative integer", "Float": "a number", "Bool": "true or false", "Duration": "a duration"}

// flagError is the commands' cobra flag error function: a usage error that
// says what a flag expects instead of quoting strconv.
func flagError(cmd *cobra.Command, err error) error {
	msg := strconvErr.ReplaceAllStringFunc(err.Error(), func(m string) string {
		sub := strconvErr.FindStringSubmatch(m)
		if sub[2] == "value out of range" {
			return "out of range"
		}
		return "must be " + strconvKinds[sub[1]]
	})
	return &UsageError{Err: fmt.Errorf("%s; see: %s --help", msg, cmd.CommandPath())}
}
