"""LightningModules, one per problem type: loss, metrics and optimizer wiring around any net."""
