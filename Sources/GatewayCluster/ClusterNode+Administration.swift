import GatewayCore

/// The admin API sees the node through `ClusterAdministration`.
extension ClusterNode: ClusterAdministration {}
