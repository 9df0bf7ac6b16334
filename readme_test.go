package credslots

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadmeQuickStartCompiles keeps the README's Go snippet identical to
// examples/quickstart, which every build compiles and vets.
func TestReadmeQuickStartCompiles(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	text := string(readme)
	start := strings.Index(text, "```go\n")
	require.NotEqual(t, -1, start, "README has a Go snippet")
	start += len("```go\n")
	end := strings.Index(text[start:], "```\n")
	require.NotEqual(t, -1, end)
	snippet := text[start : start+end]

	src, err := os.ReadFile("examples/quickstart/main.go")
	require.NoError(t, err)
	_, body, found := strings.Cut(string(src), "\n")
	require.True(t, found)
	assert.Equal(t, snippet, body, "README quick start and examples/quickstart/main.go differ")
}
