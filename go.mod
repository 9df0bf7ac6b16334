module github.com/gptme/credslots

go 1.22

require (
	github.com/fsnotify/fsnotify v1.9.0
	github.com/stretchr/testify v1.12.1
	golang.org/x/sys v0.30.0
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
