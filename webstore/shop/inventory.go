package shop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lookout-dev/lookout/webstore/store"
	"github.com/lookout-dev/lookout/webstore/telemetry"
)

// inventoryService owns stock: it reserves and releases it.
type inventoryService struct {
	shop *Shop
	tel  *telemetry.Providers
}

func newInventoryService(s *Shop, tel *telemetry.Providers) *inventoryService {
	return &inventoryService{shop: s, tel: tel}
}

func (v *inventoryService) routes() http.Handler {
	mux := http.NewServeMux()
	handle(mux, v.tel, "POST /reservations", v.reserve)
	handle(mux, v.tel, "POST /reservations/{id}/release", v.release)
	handle(mux, v.tel, "GET /stock/{product_id}", v.stock)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("/", notFound)
	return mux
}

// reservationRequest is the body of POST /reservations.
type reservationRequest struct {
	Items []store.Line `json:"items"`
}

// reservationResponse answers a successful reservation.
type reservationResponse struct {
	ReservationID string `json:"reservation_id"`
}

func (v *inventoryService) reserve(w http.ResponseWriter, r *http.Request) {
	var req reservationRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, errorMessage(err))
		return
	}
	if len(req.Items) == 0 {
		writeError(w, http.StatusBadRequest, "items must not be empty")
		return
	}
	for i, l := range req.Items {
		// Quantities here are after the quantity multiplier, so only positivity is checked.
		if l.ProductID <= 0 || l.Quantity <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("items[%d]: product_id and quantity must be positive", i))
			return
		}
	}
	ctx := context.WithoutCancel(r.Context())
	id := store.NewID("res")
	err := v.shop.db.Reserve(ctx, id, req.Items)
	var se *store.StockError
	switch {
	case err == nil:
		trace.SpanFromContext(ctx).SetAttributes(attribute.String("reservation.id", id))
		writeJSON(w, http.StatusCreated, reservationResponse{ReservationID: id})
	case errors.As(err, &se):
		trace.SpanFromContext(ctx).SetStatus(codes.Error, err.Error())
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		v.shop.logger.Error("reserve stock", "err", err)
		writeError(w, http.StatusInternalServerError, "could not reserve stock")
	}
}

func (v *inventoryService) release(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := v.shop.db.ReleaseReservation(context.WithoutCancel(r.Context()), id)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]string{"reservation_id": id, "status": "released"})
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown reservation %q", id))
	default:
		writeError(w, http.StatusConflict, err.Error())
	}
}

func (v *inventoryService) stock(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("product_id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "product_id must be a positive integer")
		return
	}
	q, err := v.shop.db.Stock(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown product %d", id))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "could not read stock")
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"product_id": id, "quantity": q})
}
