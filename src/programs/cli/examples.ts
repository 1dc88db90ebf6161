/** Example command lines shown at the end of each command's help. */
export const examples: Readonly<Record<string, ReadonlyArray<string>>> = {
  decode: ["bittorrent decode d3:foo3:bar5:helloi52ee"],
  info: ["bittorrent info ubuntu.torrent", "bittorrent info --details ubuntu.torrent", "bittorrent info --json ubuntu.torrent"],
  magnet_parse: ["bittorrent magnet_parse 'magnet:?xt=urn:btih:<hash>&tr=http://127.0.0.1:6969/announce'"],
  peers: ["bittorrent peers ubuntu.torrent", "bittorrent peers --json ubuntu.torrent"],
  handshake: ["bittorrent handshake ubuntu.torrent 127.0.0.1:6881"],
  download_piece: ["bittorrent download_piece -o piece-0 ubuntu.torrent 0"],
  download: [
    "bittorrent download -o ubuntu.iso ubuntu.torrent",
    "bittorrent download -o album/ --seed 'magnet:?xt=urn:btih:<hash>&tr=...'"
  ],
  magnet_handshake: ["bittorrent magnet_handshake 'magnet:?xt=urn:btih:<hash>&tr=...'"],
  magnet_info: ["bittorrent magnet_info 'magnet:?xt=urn:btih:<hash>&tr=...'"],
  magnet_download_piece: ["bittorrent magnet_download_piece -o piece-0 'magnet:?xt=urn:btih:<hash>&tr=...' 0"],
  magnet_download: [
    "bittorrent magnet_download -o out 'magnet:?xt=urn:btih:<hash>&tr=...'",
    "bittorrent magnet_download -o out 'magnet:?xt=urn:btih:<hash>' --dht-bootstrap 127.0.0.1:6881"
  ],
  create: [
    "bittorrent create -o photos.torrent -a http://127.0.0.1:6969/announce photos/",
    "bittorrent create -o big.torrent --piece-length 1048576 --private big.iso"
  ],
  tracker: ["bittorrent tracker --port 6969", "bittorrent tracker --host 0.0.0.0 --port 0"],
  demo: ["bittorrent demo", "bittorrent demo --size-mib 16 --seeders 2 --keep /tmp/demo"],
  seed: ["bittorrent seed photos.torrent photos/", "bittorrent seed --port 0 big.torrent big.iso"],
  dht_peers: ["bittorrent dht_peers <info hash>", "bittorrent dht_peers --dht-bootstrap 127.0.0.1:6881 <info hash>"],
  daemon: [
    "bittorrent daemon --download-dir ~/Downloads",
    "bittorrent daemon --rpc-auth alice:secret --max-upload-rate 1M",
    "transmission-remote 127.0.0.1:9091 -a file.torrent"
  ]
}
