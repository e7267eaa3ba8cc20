# Entry points. Every target builds the pinned tools first if needed;
# tools/build.sh does nothing when its pins are unchanged.
STACK ?= local

.PHONY: up preview destroy outputs recover tools cluster cluster-stop test unit-test e2e-test

## up: build the tools, start the local control plane (local stack only), and `up` the stack
up: tools
	@if [ "$(STACK)" = local ]; then go run ./cmd/localcluster start; fi
	go run ./cmd/jwtctl --stack $(STACK) up

preview: tools
	go run ./cmd/jwtctl --stack $(STACK) preview

destroy: tools
	go run ./cmd/jwtctl --stack $(STACK) destroy

outputs: tools
	go run ./cmd/jwtctl --stack $(STACK) outputs

recover: tools
	go run ./cmd/jwtctl --stack $(STACK) recover

tools:
	bash tools/build.sh

cluster: tools
	go run ./cmd/localcluster start

cluster-stop:
	go run ./cmd/localcluster stop

## test: unit tests, then the end-to-end suite on a control plane it starts itself
test: tools unit-test e2e-test

unit-test:
	go vet ./...
	go test . ./components/... ./jwtstack/... ./internal/mocks/... ./internal/driver/... ./internal/repo/...
	cd tools/random-standin && go vet ./... && go test ./...
	cd policy && go vet ./... && go test ./...

e2e-test: tools
	go test -count=1 -timeout 40m ./internal/controlplane/... ./cmd/... ./tests/...
