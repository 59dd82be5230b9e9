/// The configuration used when `wssgate` starts without a file: TLS on port 8443 with a
/// certificate made at start for the loopback names, an echo route, and a chat route served by
/// the Swift chat worker (`wssgate-chat-worker`, shipped next to `wssgate`), supervised by the
/// gateway. It is useful at once (`make run`, `docker run`) and safe to expose: nothing is stored.
///
/// It goes through the same validation and the same environment/flag overrides as a file, so
/// `WSSGATE_LISTENERS_MAIN_ADDRESS=127.0.0.1:9443 wssgate` moves it.
public enum EmbeddedDefault {
    public static let yaml = """
        listeners:
          main:
            address: "0.0.0.0:8443"
            tls:
              self_signed: true
        routes:
          echo:
            path: /echo
            kind: echo
          chat:
            path: /chat
            kind: worker
            worker:
              command: wssgate-chat-worker
              instances: 1
        """
}
