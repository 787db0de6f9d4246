module maestro.conductor/sdk

go 1.19
