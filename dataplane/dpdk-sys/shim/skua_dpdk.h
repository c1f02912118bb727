/* Exported wrappers for DPDK's `static inline` functions and macros.
 *
 * DPDK puts its fast path (rx/tx burst, mbuf accessors, lcore id, rte_errno)
 * in header-only inline functions, which have no symbol a foreign language
 * can link to. Each wrapper here is a one-line call with the same contract
 * as the function it wraps; the `skua_` prefix marks them as ours. */
#ifndef SKUA_DPDK_H
#define SKUA_DPDK_H

#include <stdint.h>

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_cycles.h>
#include <rte_version.h>

uint16_t skua_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t skua_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

struct rte_mbuf *skua_rte_pktmbuf_alloc(struct rte_mempool *mp);
int skua_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                unsigned int count);
void skua_rte_pktmbuf_free(struct rte_mbuf *m);
char *skua_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len);

/* rte_pktmbuf_mtod(m, void *): the first byte of the segment's data. */
void *skua_rte_pktmbuf_mtod(const struct rte_mbuf *m);
uint16_t skua_rte_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t skua_rte_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t skua_rte_pktmbuf_nb_segs(const struct rte_mbuf *m);
struct rte_mbuf *skua_rte_pktmbuf_next(const struct rte_mbuf *m);

unsigned int skua_rte_lcore_id(void);
int skua_rte_errno(void);
uint64_t skua_rte_rdtsc(void);

unsigned int skua_rte_ring_enqueue_burst(struct rte_ring *r, void *const *objs,
                                         unsigned int n, unsigned int *free_space);
unsigned int skua_rte_ring_count(const struct rte_ring *r);

/* RTE_VERSION as the number the headers were compiled with. */
uint32_t skua_rte_version_num(void);

/* RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP: function-like macros
 * (RTE_BIT64) that no binding generator can evaluate. */
uint64_t skua_rte_eth_rss_ip_tcp_udp(void);

#endif
