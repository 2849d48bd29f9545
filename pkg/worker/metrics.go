package worker

import (
	"errors"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/psrpc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediaworker/mediaworker/pkg/egress"
)

// metrics are this worker's Prometheus series, on a registry of its own (no globals).
type metrics struct {
	reg      *prometheus.Registry
	jobs     *prometheus.CounterVec // jobs ended, by kind and final status
	startedC *prometheus.CounterVec
	refusals *prometheus.CounterVec
	uploads  *prometheus.CounterVec
}

func newMetrics(s *Service) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.startedC = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediaworker_jobs_started_total", Help: "Jobs started, by kind."}, []string{"kind"})
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediaworker_jobs_ended_total", Help: "Jobs ended, by kind and final status."}, []string{"kind", "status"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediaworker_requests_refused_total", Help: "Start requests refused, by kind and psrpc code."}, []string{"kind", "code"})
	m.uploads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediaworker_uploads_total", Help: "Output files stored, by result."}, []string{"result"})
	running := jobsCollector{s: s, desc: prometheus.NewDesc("mediaworker_jobs_running", "Jobs running now, by kind and status.", []string{"kind", "status"}, nil)}
	avail := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mediaworker_available_cores", Help: "Cores a new job may still take."}, func() float64 { return s.cap.available() })
	busy := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mediaworker_jobs_cpu_cores", Help: "CPU the running job processes were last measured to use."}, s.cap.measuredTotal)
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mediaworker_ready", Help: "1 when claiming jobs."}, func() float64 {
		if s.Ready() {
			return 1
		}
		return 0
	})
	m.reg.MustRegister(m.startedC, m.jobs, m.refusals, m.uploads, running, avail, busy, ready,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) started(k egress.Kind) { m.startedC.WithLabelValues(string(k)).Inc() }

func (m *metrics) refused(r *egress.Request, err error) {
	kind := "unknown"
	if r != nil {
		kind = string(r.Kind)
	}
	code := string(psrpc.Unknown)
	var pe psrpc.Error
	if errors.As(err, &pe) {
		code = string(pe.Code())
	}
	m.refusals.WithLabelValues(kind, code).Inc()
}

func (m *metrics) ended(k egress.Kind, info *livekit.EgressInfo) {
	m.jobs.WithLabelValues(string(k), info.Status.String()).Inc()
	for _, f := range info.FileResults {
		if f.Location != "" {
			m.uploads.WithLabelValues("ok").Inc()
		} else {
			m.uploads.WithLabelValues("failed").Inc()
		}
	}
}

// jobsCollector reports running jobs by kind and status at scrape time.
type jobsCollector struct {
	s    *Service
	desc *prometheus.Desc
}

func (c jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[[2]string]int{}
	for _, j := range c.s.jobInfos() {
		counts[[2]string{j.Kind, j.Status}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}
