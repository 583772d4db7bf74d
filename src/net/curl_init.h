// libcurl's process-wide set-up, shared by every user of libcurl in this folder. Internal to
// src/net.
#ifndef DATASITE_NET_CURL_INIT_H_
#define DATASITE_NET_CURL_INIT_H_

namespace datasite::net {

// Calls curl_global_init once per process, whichever caller comes first. Safe for concurrent use.
void InitCurlOnce();

}  // namespace datasite::net

#endif  // DATASITE_NET_CURL_INIT_H_
