/* Debian's libcivetweb 1.15 loads libssl with dlopen("libssl.so") and looks
 * up SSL_get_peer_certificate, which OpenSSL 3 only provides as a macro, so
 * the lookup yields a null pointer that civetweb calls on the first TLS
 * connection (civetweb issue #1334). sage-searchd exports the function itself
 * and is linked with the soname libssl.so, so that dlopen finds this
 * definition first; every other symbol still resolves to the real libssl. */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate
X509 *SSL_get_peer_certificate(const SSL *s);

X509 *SSL_get_peer_certificate(const SSL *s)
{
    return SSL_get1_peer_certificate(s);
}
