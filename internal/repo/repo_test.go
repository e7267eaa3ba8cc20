package repo

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeclaresModule(t *testing.T) {
	assert.True(t, declaresModule([]byte("// comment\nmodule github.com/juwan/jwt-secret\n\ngo 1.26\n"), Module))
	assert.True(t, declaresModule([]byte(`module "github.com/juwan/jwt-secret"`), Module))
	assert.False(t, declaresModule([]byte("module github.com/juwan/jwt-secret/tools/kwok\n"), Module))
	assert.False(t, declaresModule([]byte("go 1.26\n"), Module))
}

func TestFindRootFromSubfolder(t *testing.T) {
	// The test runs in internal/repo, two levels below the root.
	want, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	root, err := FindRoot()
	require.NoError(t, err)
	assert.Equal(t, want, root)
}
