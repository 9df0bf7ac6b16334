package credslots

import "path/filepath"

// The variables each CLI reads to find its creds dir, in the order it
// reads them. The first one set decides.
var (
	// Claude Code reads its credentials from
	// $CLAUDE_SECURESTORAGE_CONFIG_DIR when set (its config dir may stay
	// elsewhere), else from its config dir $CLAUDE_CONFIG_DIR.
	claudeDirVars = []string{"CLAUDE_SECURESTORAGE_CONFIG_DIR", "CLAUDE_CONFIG_DIR"}
	// Codex CLI keeps everything in $CODEX_HOME.
	codexDirVars = []string{"CODEX_HOME"}
)

// geminiHomeVar is the home directory Gemini CLI uses instead of the user's:
// its creds dir is "$GEMINI_CLI_HOME/.gemini".
const geminiHomeVar = "GEMINI_CLI_HOME"

// cliDir resolves the format's creds dir from the environment (lookup) and
// the home directory (home), the way its CLI does. An empty variable counts
// as unset, but for $CLAUDE_SECURESTORAGE_CONFIG_DIR: Claude Code
// (2.1.332) reads that one, set but empty, as ~/.claude, whatever
// $CLAUDE_CONFIG_DIR says.
func (f *jsonFormat) cliDir(lookup func(string) (string, bool), home func() (string, error)) string {
	var vars []string
	switch f.name {
	case "claude":
		vars = claudeDirVars
	case "codex":
		vars = codexDirVars
	}
	for _, v := range vars {
		d, set := lookup(v)
		if d != "" {
			return filepath.Clean(d)
		}
		if set && v == claudeDirVars[0] {
			break // set but empty: the home directory's
		}
	}
	base, err := "", error(nil)
	if f.name == "gemini" {
		base, _ = lookup(geminiHomeVar)
	}
	if base == "" {
		base, err = home()
	}
	if err != nil || base == "" {
		return f.dir
	}
	return filepath.Join(base, f.dir)
}
