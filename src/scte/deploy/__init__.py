"""What a deployment of the platform is made of besides its code: the services' broker identities and keys
(`broker_keys`) and the access policies derived from the topology (`policies`)."""
