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

// cliDir resolves the format's creds dir from the environment (getenv) and
// the home directory (home), the way its CLI does. An empty variable counts
// as unset, as the CLIs treat it.
func (f *jsonFormat) cliDir(getenv func(string) string, home func() (string, error)) string {
	var vars []string
	switch f.name {
	case "claude":
		vars = claudeDirVars
	case "codex":
		vars = codexDirVars
	}
	for _, v := range vars {
		if d := getenv(v); d != "" {
			return filepath.Clean(d)
		}
	}
	base, err := "", error(nil)
	if f.name == "gemini" {
		base = getenv(geminiHomeVar)
	}
	if base == "" {
		base, err = home()
	}
	if err != nil || base == "" {
		return f.dir
	}
	return filepath.Join(base, f.dir)
}
